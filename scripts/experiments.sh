#!/usr/bin/env bash
# Regenerates docs/RESULTS.md and its plots: how dfptrain stands against the claims of Das et al.
# (ICLR 2018) on this machine (issue 6). Three sections, each run by one function below:
#   accuracy    Fashion-MNIST, lenet5 and resnet20, fp32 vs dfp16, identical hyper-parameters,
#               3 seeds each (dfptrain train --metrics)
#   throughput  training images/s at 224x224 (synthetic) for resnet50, googlenet, vgg16, alexnet,
#               fp32 vs dfp16 (and dfp8, issue 7) and where the time goes; NITI int8 vs fp32
#               on vgg_small (short dfptrain train runs) (dfptrain bench train), beside PyTorch's own
#               FP32 and bf16-autocast ResNet-50 step (scripts/pytorch_reference.py)
#   kernels     DFP16 conv passes against the measured INT16 VNNI peak, oneDNN FP32 and bf16
#               (dfptrain bench peak / conv / gemm; DFP8, MXINT8 and oneDNN int8 beside them)
#   eightbit    issue 7: Fashion-MNIST accuracy of the 8-bit precisions (dfp8, mxint8) against
#               fp32 and dfp16, same network, epochs and hyper-parameters, 3 seeds (the
#               throughput section measures dfp8's training step)
# Raw outputs (JSON, JSON lines) go to OUT/results/SECTION/ with commands.tsv, the exact commands
# run; scripts/results_page.py then writes OUT/RESULTS.md and OUT/results/*.png from them alone.
#
# Usage: scripts/experiments.sh [--quick] [--section accuracy|throughput|kernels|eightbit|all]
#                               [--out DIR]
#                               [--page-only] [--skip-setup] [--no-pytorch] [--batch B] [--threads N]
#   --quick       tiny limits (1 epoch, 1 seed, few images, 1 rep): checks the whole pipeline in a
#                 couple of minutes; the page says so. Default --out is then build/experiments-quick
#                 (ignored by git), so quick numbers never land in docs/.
#   --page-only   no experiments: regenerate the page and plots from the raw files already in OUT
#   --skip-setup  use the existing build/dfptrain (or $DFPTRAIN) instead of scripts/setup.sh
#   --no-pytorch  skip the PyTorch reference (and python3-torch); the page says it is missing
#   --batch B     batch of the throughput section, dfptrain and PyTorch alike (default 32)
#   --threads N   threads of every run (default: all cores, nproc)
# The full run takes about 45 min (accuracy), 5 min (throughput), 1 min (kernels; both measured
# 2026-11-30 with --skip-setup) and 40 min (eightbit, measured at one thread beside other work) on
# 2 quiet cores. Run it on a quiet machine: the throughput and kernel figures are timings, and
# OpenMP runs on all cores collapse when another process holds one (seen here: resnet20 training
# at 24 images/s on 2 threads beside another job, against 340 on 1 thread).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
section=all
out=""
page_only=0
skip_setup=0
pytorch=1
batch=32
threads="$(nproc)"
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --section) section="${2:?--section needs a value}"; shift ;;
    --out) out="${2:?--out needs a value}"; shift ;;
    --page-only) page_only=1 ;;
    --skip-setup) skip_setup=1 ;;
    --no-pytorch) pytorch=0 ;;
    --batch) batch="${2:?--batch needs a value}"; shift ;;
    --threads) threads="${2:?--threads needs a value}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "experiments.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$section" in
  accuracy|throughput|kernels|eightbit|all) ;;
  *) echo "experiments.sh: --section must be accuracy, throughput, kernels, eightbit or all" >&2; exit 2 ;;
esac
for v in "$batch" "$threads"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "experiments.sh: --batch and --threads take a positive integer" >&2; exit 2; }
done
if [ -z "$out" ]; then
  if ((quick)); then out=build/experiments-quick; else out=docs; fi
fi
results="$out/results"
mode=full
((quick)) && mode=quick
dfptrain="${DFPTRAIN:-./build/dfptrain}"
py=/usr/bin/python3

wants() { [ "$section" = all ] || [ "$section" = "$1" ]; }

# --- set-up: the build (scripts/setup.sh) and this script's own Debian packages --------------
# Only for experiments, never dependencies of the library or its CI: gnuplot (plots), Python 3
# (the page generator, standard library only) and python3-torch (the PyTorch reference).
install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "experiments: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

packages=(gnuplot-nox python3)
if ((!page_only && pytorch)) && wants throughput; then packages+=(python3-torch); fi
install_missing "${packages[@]}"
if ((!page_only)); then
  if ((skip_setup)); then
    [ -x "$dfptrain" ] || { echo "experiments.sh: --skip-setup but no $dfptrain" >&2; exit 2; }
  else
    bash scripts/setup.sh
  fi
fi

# --- helpers ------------------------------------------------------------------------------------
# Each section starts from an empty raw folder, so that the page never mixes two runs of a section.
begin_section() {  # NAME
  local dir="$results/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  commands="$dir/commands.tsv"
  {
    printf '_mode\t%s\n' "$mode"
    printf '_date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf '_git\t%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
    printf '_threads\t%s\n' "$threads"
  } >"$commands"
}
note() {  # KEY VALUE: a fact for the page
  printf '%s\t%s\n' "$1" "$2" >>"$commands"
}
run() {  # KEY COMMAND...: records the command under KEY, prints it, runs it
  local key="$1"
  shift
  printf '%s\t%s\n' "$key" "$*" >>"$commands"
  echo "+ $*"
  "$@"
}

# --- accuracy -----------------------------------------------------------------------------------
# Epochs: about 45 min on 2 cores in all. resnet20 runs ~1000 images/s fp32 and ~700 dfp16 at
# batch 64, i.e. ~1-1.5 min per 60,000-image epoch: 5 epochs x 2 precisions x 3 seeds ~ 39 min;
# lenet5 (~25,000 images/s) 20 epochs x 6 runs ~ 5 min. Identical hyper-parameters for both
# precisions (the options are spelled out, not left to defaults); --seed changes the data order
# (dfptrain seeds weights by layer name, so all seeds start from the same weights).
accuracy() {
  begin_section accuracy
  local dir="$results/accuracy" seeds=(1 2 3) model precision seed epochs log_every
  local limits=()
  if ((quick)); then
    seeds=(1)
    limits=(--train-limit 512 --test-limit 256)
  fi
  for model in lenet5 resnet20; do
    if ((quick)); then
      epochs=1 log_every=2
    elif [ "$model" = lenet5 ]; then
      epochs=20 log_every=100
    else
      epochs=5 log_every=20
    fi
    for seed in "${seeds[@]}"; do
      for precision in fp32 dfp16; do
        run "$model/$precision/$seed" "$dfptrain" train --model "$model" --data fashion-mnist \
          --precision "$precision" --epochs "$epochs" --batch 64 --lr 0.05 --schedule cosine \
          --momentum 0.9 --weight-decay 0.0005 --seed "$seed" --threads "$threads" \
          --log-every "$log_every" "${limits[@]}" \
          --metrics "$dir/${model}_${precision}_seed${seed}.jsonl"
      done
    done
  done
}

# --- throughput ---------------------------------------------------------------------------------
throughput() {
  begin_section throughput
  local dir="$results/throughput" model
  local opts=(--batch "$batch" --threads "$threads")
  local torch_opts=(--batch "$batch" --threads "$threads" --warmup 3 --steps 10)
  if ((quick)); then
    opts=(--batch 2 --threads "$threads" --reps 1 --warmup 1)
    torch_opts=(--batch 2 --threads "$threads" --warmup 1 --steps 2)
  fi
  # `dfptrain bench train` may not be in this build yet: then the page says so.
  if "$dfptrain" bench --help 2>&1 | grep -Eq '^[[:space:]]+train[[:space:]]'; then
    for model in resnet50 googlenet vgg16 alexnet; do
      run "bench_train/$model" "$dfptrain" bench train --model "$model" "${opts[@]}" \
        --precision fp32,dfp16,dfp8 --json "$dir/bench_train_$model.json"
    done
  else
    note _skipped_bench_train "this build of dfptrain has no 'bench train' subcommand (dfptrain bench --help)"
    echo "experiments: dfptrain bench train is not available; the page will say so"
  fi
  # NITI's integer-only int8 has its own training loop (no bench train): one short epoch of
  # `dfptrain train` on synthetic data per precision, on its BN-free vgg_small (issue 7's target).
  local p sgd
  for p in fp32 dfp16 dfp8 int8; do
    sgd=(--lr 0.01)
    [ "$p" = int8 ] && sgd=(--mu 4,3,2)
    run "speed/vgg_small/$p" "$dfptrain" train --model vgg_small --data synthetic:1x28x28:10 \
      --precision "$p" --epochs 1 --batch 64 "${sgd[@]}" --train-limit "$( ((quick)) && echo 256 || echo 3200)" \
      --test-limit 64 --threads "$threads" --log-every 0 --metrics "$dir/speed_vgg_small_$p.jsonl"
  done
  if ((pytorch)); then
    run pytorch/resnet50 "$py" scripts/pytorch_reference.py --model resnet50 "${torch_opts[@]}" \
      --json "$dir/pytorch_resnet50.json"
  else
    note _skipped_pytorch "--no-pytorch"
  fi
}

# --- kernels ------------------------------------------------------------------------------------
kernels() {
  begin_section kernels
  local dir="$results/kernels" thr="1,2"
  local peak_opts=() conv_opts=(--reps 5) gemm_opts=(--reps 5)
  ((threads >= 2)) || thr=1
  if ((quick)); then
    thr=1
    peak_opts=(--reps 1 --sample-ms 20)
    conv_opts=(--layers res3_3x3 --reps 1 --min-sample-ms 1)
    gemm_opts=(--shape "256,256,256" --reps 1 --min-sample-ms 1 --no-dfp8)
  fi
  # bench peak needs AVX512-VNNI; without it the conv and GEMM figures are still measured and the
  # page says the shares of peak are n/a (and bench train's isa, that the kernels had no VNNI).
  if ! run peak "$dfptrain" bench peak --threads "$thr" "${peak_opts[@]}" \
    --json "$dir/bench_peak.json"; then
    note _skipped_peak "dfptrain bench peak failed (a CPU without AVX512-VNNI?)"
    echo "experiments: bench peak failed; the shares of peak will be n/a"
  fi
  run conv "$dfptrain" bench conv --threads "$thr" "${conv_opts[@]}" --json "$dir/bench_conv.json"
  run gemm "$dfptrain" bench gemm --threads "$thr" "${gemm_opts[@]}" --json "$dir/bench_gemm.json"
}

# --- eightbit (issue 7) --------------------------------------------------------------------------
# Every precision on the same network for the same epochs: lenet5 (SGD as in the accuracy section)
# and NITI's niti_lenet (BN-free and bias-free: FP32 diverges at lr 0.05, so its SGD runs use 0.01),
# 10 epochs, 3 seeds. mxint8 is dfp8 with blocks of 32 along each GEMM's reduction; int8 is NITI's
# integer-only training (no SGD options: its learning rate is the mu schedule, default 4,3,2), on
# niti_lenet only (the integer engine takes BN-free, bias-free chains). Accuracy does not depend on
# the thread count, so these runs may use one thread (--threads 1) beside other work.
spec_of() {  # LABEL: the --precision spec of a precision label
  case "$1" in
    mxint8) echo "dfp8,all.granularity=block,all.block=32" ;;
    *) echo "$1" ;;
  esac
}
eightbit() {
  begin_section eightbit
  local dir="$results/eightbit" seeds=(1 2 3) model precision seed epochs=10 log_every=100 lr
  local limits=() precisions sgd
  if ((quick)); then
    seeds=(1)
    epochs=1 log_every=2
    limits=(--train-limit 512 --test-limit 256)
  fi
  for model in lenet5 niti_lenet; do
    lr=0.05 precisions=(fp32 dfp16 dfp8 mxint8)
    [ "$model" = niti_lenet ] && lr=0.01 precisions=(fp32 dfp16 dfp8 mxint8 int8)
    for seed in "${seeds[@]}"; do
      for precision in "${precisions[@]}"; do
        sgd=(--lr "$lr" --schedule cosine --momentum 0.9 --weight-decay 0.0005)
        [ "$precision" = int8 ] && sgd=(--mu 4,3,2)
        run "$model/$precision/$seed" "$dfptrain" train --model "$model" --data fashion-mnist \
          --precision "$(spec_of "$precision")" --epochs "$epochs" --batch 64 "${sgd[@]}" \
          --seed "$seed" --threads "$threads" --log-every "$log_every" "${limits[@]}" \
          --metrics "$dir/${model}_${precision}_seed${seed}.jsonl"
      done
    done
  done
}

if ((!page_only)); then
  mkdir -p "$results"
  wants accuracy && accuracy
  wants throughput && throughput
  wants kernels && kernels
  wants eightbit && eightbit
fi

# --- the page -----------------------------------------------------------------------------------
[ -d "$results" ] || { echo "experiments.sh: no raw results in $results" >&2; exit 2; }
"$py" scripts/results_page.py --results "$results" --page "$out/RESULTS.md"
echo "experiments: wrote $out/RESULTS.md"
