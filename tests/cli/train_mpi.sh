#!/usr/bin/env bash
# dfptrain train on 2 MPI ranks of this machine, end to end on the real Fashion-MNIST:
#  - rank 0 alone prints and writes metrics and checkpoints; a run stopped after epoch 1 and
#    resumed on 2 ranks ends with the same checkpoint, bit for bit;
#  - DFP16 exchange sends half the bytes of FP32 exchange (metrics' bytes_sent);
#  - resuming with another number of ranks, a global batch that does not split, a bad
#    --grad-exchange, or --sync-bn with a rank left without samples is one named error;
#  - ResNet-20 trains with synchronised batch norm;
#  - a rank that hangs (SIGSTOP) makes rank 0 stop with a named timeout error, a rank that dies
#    (SIGKILL) ends the run, and the last checkpoint stays intact in both cases.
# Usage: train_mpi.sh PATH/TO/dfptrain PATH/TO/mpirun (as root: OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment)
set -u
dfptrain=$1
mpi=("$2" --oversubscribe -np 2 -x OMP_NUM_THREADS=1)
work=$(mktemp -d)
stopped=""
trap '[ -n "$stopped" ] && kill -KILL "$stopped" 2>/dev/null; rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
base=(train --train-limit 1000 --test-limit 300 --log-every 4 --threads 1)
run=("${base[@]}" --epochs 2)

"${mpi[@]}" "$dfptrain" "${run[@]}" --grad-exchange dfp16 --checkpoint-dir "$work/whole" --metrics "$work/dfp16.jsonl" \
  > "$work/whole.log" 2>&1 || fail "2-rank run: $(cat "$work/whole.log")"
grep -q "data-parallel: 2 ranks, global batch 64 (32 per rank), gradient exchange dfp16" "$work/whole.log" \
  || fail "no data-parallel line: $(cat "$work/whole.log")"
[ "$(grep -c "^epoch 2/2: " "$work/whole.log")" -eq 1 ] || fail "not rank 0 alone printing"
grep -q "test accuracy [3-9][0-9]\." "$work/whole.log" || fail "2 ranks did not learn: $(cat "$work/whole.log")"
"${mpi[@]}" "$dfptrain" "${run[@]}" --grad-exchange dfp16 --checkpoint-dir "$work/parts" --stop-after-epoch 1 > /dev/null 2>&1 \
  || fail "first part"
"${mpi[@]}" "$dfptrain" "${run[@]}" --grad-exchange dfp16 --checkpoint-dir "$work/parts" --resume > "$work/resumed.log" 2>&1 \
  || fail "resumed part: $(cat "$work/resumed.log")"
grep -q "resumed from" "$work/resumed.log" || fail "the resumed run did not say it resumed"
cmp -s "$work/whole/last.ckpt" "$work/parts/last.ckpt" || fail "resumed 2-rank run differs from the uninterrupted one"
echo "PASS 2 ranks train, rank 0 writes, resume is exact"

"${mpi[@]}" "$dfptrain" "${base[@]}" --grad-exchange fp32 --metrics "$work/fp32.jsonl" \
  > /dev/null 2>&1 || fail "fp32 exchange"
bytes() { sed -n 's/.*"bytes_sent":\([0-9]*\).*/\1/p' "$1" | head -1; }
fp32=$(bytes "$work/fp32.jsonl") dfp16=$(bytes "$work/dfp16.jsonl")
[ -n "$fp32" ] && [ -n "$dfp16" ] && [ $((2 * dfp16 - fp32)) -le 1000 ] && [ "$dfp16" -lt "$fp32" ] \
  || fail "bytes per step: fp32 '$fp32', dfp16 '$dfp16'"
echo "PASS bytes sent per step: fp32 $fp32, dfp16 $dfp16"

expect_bad_input "the checkpoint's run had 2 rank(s), this one has 1" "${run[@]}" --checkpoint-dir "$work/parts" --resume
expect_bad_input "grad-exchange" train --grad-exchange int8
"${mpi[@]}" "$dfptrain" "${run[@]}" --batch 63 > "$work/out" 2> "$work/err" && fail "--batch 63 on 2 ranks ran"
grep -q -- "--batch 63 (the global batch) must be a multiple of the 2 ranks" "$work/err" \
  || fail "--batch 63: $(cat "$work/err")"
"${mpi[@]}" "$dfptrain" train --train-limit 65 --test-limit 50 --threads 1 --sync-bn > "$work/out" 2> "$work/err" \
  && fail "--sync-bn with a last batch of 1 sample for 2 ranks ran"
grep -q -- "--sync-bn: the last batch of each epoch holds 1 sample(s) for 2 ranks" "$work/err" \
  || fail "--sync-bn: $(cat "$work/err")"
echo "PASS bad input is a named error"

"${mpi[@]}" "$dfptrain" train --model resnet20 --train-limit 256 --test-limit 100 --log-every 0 --threads 1 \
  --sync-bn > "$work/sync_bn.log" 2>&1 || fail "--sync-bn: $(cat "$work/sync_bn.log")"
grep -q "gradient exchange fp32, batch norm synchronised" "$work/sync_bn.log" && grep -q "^epoch 1/1: " "$work/sync_bn.log" \
  || fail "--sync-bn: $(cat "$work/sync_bn.log")"
echo "PASS ResNet-20 with synchronised batch norm"

# The pid of rank $1 of the run whose checkpoints go to $work/$2.
rank_pid() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q -- "$work/$2" || continue
    tr '\0' '\n' 2>/dev/null < "$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "${p#/proc/}"; return; }
  done
}
# Starts a long 2-rank run into $work/$1, waits for its first checkpoint, sends signal $2 to rank 1
# and waits for the run to end; the run must fail, and the checkpoint must still load.
break_rank() {
  timeout 120 "${mpi[@]}" "$dfptrain" "${base[@]}" --epochs 1000 --mpi-timeout 5 --checkpoint-dir "$work/$1" \
    > "$work/$1.log" 2>&1 &
  local launcher=$! i pid=""
  for i in $(seq 600); do [ -e "$work/$1/last.ckpt" ] && break; sleep 0.1; done
  [ -e "$work/$1/last.ckpt" ] || fail "$1: no checkpoint: $(cat "$work/$1.log")"
  for i in $(seq 50); do pid=$(rank_pid 1 "$1"); [ -n "$pid" ] && break; sleep 0.1; done
  [ -n "$pid" ] || fail "$1: rank 1 not found"
  stopped=$pid
  kill "-$2" "$pid"
  wait "$launcher" && fail "$1: the run ended well with rank 1 gone"
  [ $? -eq 124 ] && fail "$1: the run hung: $(cat "$work/$1.log")"
  "$dfptrain" eval "$work/$1/last.ckpt" > "$work/$1.eval" || fail "$1: checkpoint damaged"
}
break_rank hang STOP
grep -q "dfptrain: error: .*rank 0: .*no answer from the other ranks within 5 s (--mpi-timeout): a rank died or hangs" \
  "$work/hang.log" || fail "hang: no named timeout error: $(cat "$work/hang.log")"
echo "PASS a hung rank: rank 0 stops with a named error, checkpoint intact"
break_rank dead KILL
echo "PASS a dead rank ends the run, checkpoint intact"
