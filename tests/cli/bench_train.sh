#!/usr/bin/env bash
# dfptrain bench train end to end on LeNet-5 (one repetition, no timing checks):
#  - the table and the --json records (one per precision, the documented keys; speedup_vs_fp32
#    null without an FP32 precision); --layers N adds N rows of the slowest layers;
#  - bad options are one error line and exit status 2.
# Usage: bench_train.sh PATH/TO/dfptrain
set -u
dfptrain=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
quick=(bench train --model lenet5 --batch 8 --reps 1 --warmup 1 --min-sample-ms 0)

"$dfptrain" "${quick[@]}" --precision fp32,dfp16,first=dfp16 --layers 3 --json "$work/both.json" > "$work/both.log" \
  || fail "bench train fp32,dfp16,first=dfp16"
grep -q "dfp16,first=dfp16: 4 of 5 conv/linear layers in DFP16" "$work/both.log" || fail "table: $(cat "$work/both.log")"
grep -q "^  quantization " "$work/both.log" || fail "table has no quantization line"
grep -q "the 3 slowest:" "$work/both.log" || fail "--layers 3: no layer table"
[ "$(sed -n '/the 3 slowest:/,$p' "$work/both.log" | grep -c '^  ')" -eq 3 ] || fail "--layers 3: not 3 rows"
[ "$(grep -c '"precision":' "$work/both.json")" -eq 2 ] || fail "not two records: $(cat "$work/both.json")"
for key in model batch threads precision step_ms images_per_s speedup_vs_fp32 breakdown_ms conv_fprop quantization sgd_update layers_ms; do
  grep -q "\"$key\":" "$work/both.json" || fail "no key $key in --json"
done
grep -q '"speedup_vs_fp32": 1.0' "$work/both.json" || fail "fp32's own ratio is not 1.0"
echo "PASS bench train table and --json"

"$dfptrain" "${quick[@]}" --precision dfp16 --json "$work/dfp16.json" > /dev/null || fail "bench train dfp16"
grep -q '"speedup_vs_fp32": null' "$work/dfp16.json" || fail "no fp32, but speedup_vs_fp32 is not null"
echo "PASS no fp32: speedup_vs_fp32 null"

run=(bench train --warmup 0 --min-sample-ms 0)  # plus --model, --batch, --reps below
expect_bad_input "model" "${run[@]}" --model no_such_net --batch 8 --reps 1
expect_bad_input "batch" "${run[@]}" --model lenet5 --batch 0 --reps 1
expect_bad_input "precision" "${run[@]}" --model lenet5 --batch 8 --reps 1 --precision fp32,dfp12
expect_bad_input "precision" "${run[@]}" --model lenet5 --batch 8 --reps 1 --precision first=dfp16
expect_bad_input "input" "${run[@]}" --model lenet5 --batch 8 --reps 1 --input 28x28
expect_bad_input "input" "${run[@]}" --model lenet5 --batch 8 --reps 1 --input 0x28x1
expect_bad_input "reps" "${run[@]}" --model lenet5 --batch 8 --reps 0
expect_bad_input "threads" "${run[@]}" --model lenet5 --batch 8 --reps 1 --threads -1
expect_bad_input "layers" "${run[@]}" --model lenet5 --batch 8 --reps 1 --layers -1
expect_bad_input "cannot write" "${run[@]}" --model lenet5 --batch 8 --reps 1 --json "$work/no-dir/out.json"
echo "PASS bad options exit 2 with one named cause"
