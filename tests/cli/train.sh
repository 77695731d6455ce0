#!/usr/bin/env bash
# dfptrain train end to end on the real Fashion-MNIST (a few thousand images):
#  - a run stopped after epoch 1 and resumed ends with the same checkpoint, bit for bit, as an
#    uninterrupted run;
#  - bad input is one error line and exit status 2, and leaves no checkpoint behind.
# Usage: train.sh PATH/TO/dfptrain
set -u
dfptrain=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"
run=(train --train-limit 1500 --test-limit 300 --epochs 2 --log-every 0 --threads 2)

"$dfptrain" "${run[@]}" --checkpoint-dir "$work/whole" > /dev/null || fail "uninterrupted run"
"$dfptrain" "${run[@]}" --checkpoint-dir "$work/parts" --stop-after-epoch 1 > /dev/null || fail "first part"
"$dfptrain" "${run[@]}" --checkpoint-dir "$work/parts" --resume --metrics "$work/metrics.jsonl" > "$work/resumed.log" \
  || fail "resumed part"
grep -q "resumed from" "$work/resumed.log" || fail "the resumed run did not say it resumed"
cmp -s "$work/whole/last.ckpt" "$work/parts/last.ckpt" || fail "resumed run differs from the uninterrupted one"
grep -q '"epoch":2' "$work/metrics.jsonl" && grep -q '"test_top1"' "$work/metrics.jsonl" || fail "metrics lines"
echo "PASS resume is exact"

"$dfptrain" eval "$work/whole/last.ckpt" > "$work/eval.log" || fail "eval"
grep -q "lenet5 after epoch 2 on fashion-mnist (10000 test images), precision dfp16: test loss" "$work/eval.log" \
  || fail "eval output: $(cat "$work/eval.log")"
echo "PASS eval of a checkpoint"

expect_bad_input "epochs" train --epochs 0
expect_bad_input "--batch 1000000" train --model resnet50 --data synthetic:3x64x64:10 --batch 1000000
expect_bad_input "precision" train --precision dfp12
expect_bad_input "no-such-dir" train --data idx:no-such-dir
expect_bad_input "unknown data spec" train --data imagenet:x
expect_bad_input "data_batch_1.bin" train --data cifar:no-such-dir
touch "$work/a-file"
expect_bad_input "checkpoint-dir" train --checkpoint-dir "$work/a-file/sub" --train-limit 100
expect_bad_input "resume" train --resume
expect_bad_input "checkpoint" train --resume --checkpoint-dir "$work/empty" --train-limit 100
[ ! -e "$work/empty/last.ckpt" ] || fail "a failed resume left a checkpoint"
expect_bad_input "not-an-option" train --not-an-option
expect_bad_input "cannot open" inspect "$work/missing.idx"
cp "$work/whole/last.ckpt" "$work/corrupt.ckpt"
printf 'X' | dd of="$work/corrupt.ckpt" bs=1 seek=2000 conv=notrunc status=none
expect_bad_input "checksum" eval "$work/corrupt.ckpt"
echo "PASS bad input exits 2 with a named cause"
