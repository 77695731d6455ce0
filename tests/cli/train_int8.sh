#!/usr/bin/env bash
# dfptrain train --precision int8 (NITI, integer-only) end to end on the real Fashion-MNIST:
#  - niti_lenet learns from a few thousand images, far above the 10% of chance, with and without
#    the 16-bit weight accumulator, and the metrics file gets its lines;
#  - a model without an integer version, checkpoint options and a bad --mu are one error line
#    each, exit status 2.
# Usage: train_int8.sh PATH/TO/dfptrain
set -u
dfptrain=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
run=(train --precision int8 --model niti_lenet --train-limit 3200 --test-limit 1000 --log-every 25
     --threads 2)

"$dfptrain" "${run[@]}" --metrics "$work/metrics.jsonl" > "$work/int8.log" || fail "int8 run: $(cat "$work/int8.log")"
grep -q "layers: conv1 int8,relu1 int8,pool1 int8,conv2 int8" "$work/int8.log" || fail "layers line: $(cat "$work/int8.log")"
grep -qE "test accuracy ([5-9][0-9]|100)\." "$work/int8.log" || fail "int8 did not learn: $(cat "$work/int8.log")"
grep -q '"mu":' "$work/metrics.jsonl" && grep -q '"test_top1"' "$work/metrics.jsonl" || fail "metrics lines"
echo "PASS int8 learns: $(grep -o 'test accuracy [0-9.]*%' "$work/int8.log")"

"$dfptrain" "${run[@]}" --int8-weight-accumulator > "$work/acc.log" || fail "accumulator run"
grep -qE "test accuracy ([5-9][0-9]|100)\." "$work/acc.log" || fail "int8 with the accumulator did not learn: $(cat "$work/acc.log")"
echo "PASS int8 with the 16-bit accumulator learns: $(grep -o 'test accuracy [0-9.]*%' "$work/acc.log")"

expect_bad_input "model 'lenet5'.*integer models: niti_lenet, vgg_small" train --precision int8 --model lenet5
expect_bad_input "checkpoints" train --precision int8 --model niti_lenet --checkpoint-dir "$work/ckpt"
expect_bad_input "--mu" train --precision int8 --model niti_lenet --mu 5,x
expect_bad_input "--mu" train --precision int8 --model niti_lenet --mu 9
echo "PASS bad int8 options are named errors"
