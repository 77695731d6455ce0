#!/usr/bin/env bash
# dfptrain train/eval on an image folder (--data folder:DIR[:SIZE]) end to end, on a tiny tree of
# copies of the fuzz seed JPEGs (fuzz/seeds/jpeg: colour 4:2:0, grey, progressive):
#  - training with augmentation gives the same checkpoint, bit for bit, with and without the
#    background prefetch, and stopped after epoch 1 and resumed; eval reads the checkpoint's
#    folder data;
#  - resuming without the run's augmentation is refused;
#  - bad folders and files are one error line naming the file, and exit status 2.
# Usage: data_folder.sh PATH/TO/dfptrain PATH/TO/fuzz/seeds/jpeg
set -u
dfptrain=$1
seeds=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/lib.sh"

make_tree() {  # make_tree DIR: classes "checks" (grey) and "colour" (colour and progressive)
  mkdir -p "$1"/train/checks "$1"/train/colour "$1"/test/checks "$1"/test/colour
  for i in $(seq 1 12); do
    cp "$seeds/grey.jpg" "$1/train/checks/$i.jpg"
    cp "$seeds/colour_420.jpg" "$1/train/colour/a$i.jpg"
    cp "$seeds/progressive_444.jpg" "$1/train/colour/b$i.jpg"
  done
  cp "$seeds/grey.jpg" "$1/test/checks/1.jpg"
  cp "$seeds/progressive_444.jpg" "$1/test/colour/1.jpg"
}
make_tree "$work/tree"
run=(train --data "folder:$work/tree:28" --epochs 2 --batch 8 --log-every 0 --threads 2
     --augment-crop 3 --augment-flip)

"$dfptrain" "${run[@]}" --checkpoint-dir "$work/prefetch" > "$work/train.log" || fail "training on folder data: $(cat "$work/train.log")"
grep -q "(36 train, 2 test images)" "$work/train.log" || fail "image counts: $(cat "$work/train.log")"
"$dfptrain" "${run[@]}" --checkpoint-dir "$work/direct" --no-prefetch > /dev/null || fail "training without prefetch"
cmp -s "$work/prefetch/last.ckpt" "$work/direct/last.ckpt" || fail "prefetched and direct batches trained differently"
echo "PASS folder data trains; prefetch gives the same checkpoint as direct batches"
"$dfptrain" "${run[@]}" --checkpoint-dir "$work/parts" --stop-after-epoch 1 > /dev/null || fail "first part"
"$dfptrain" "${run[@]}" --checkpoint-dir "$work/parts" --resume > /dev/null || fail "resumed part"
cmp -s "$work/prefetch/last.ckpt" "$work/parts/last.ckpt" || fail "resumed augmented run differs from the uninterrupted one"
echo "PASS resume with augmentation is exact"

"$dfptrain" eval "$work/prefetch/last.ckpt" > "$work/eval.log" || fail "eval: $(cat "$work/eval.log")"
grep -q "(2 test images)" "$work/eval.log" || fail "eval output: $(cat "$work/eval.log")"
echo "PASS eval of a folder-data checkpoint"

expect_bad_input "augment_flip" train --data "folder:$work/tree:28" --epochs 2 --batch 8 --threads 2 \
  --checkpoint-dir "$work/prefetch" --resume --augment-crop 3
expect_bad_input "$work/no-such-dir" train --data "folder:$work/no-such-dir"
expect_bad_input "folder:DIR:SIZE" train --data "folder:$work/tree:0"
expect_bad_input "augment-crop" train --data "folder:$work/tree:28" --augment-crop -1
mkdir -p "$work/empty/train" "$work/empty/test"
expect_bad_input "$work/empty/train': no class folders" train --data "folder:$work/empty"

make_tree "$work/text"
echo "not a picture" > "$work/text/train/colour/notes.txt"
expect_bad_input "$work/text/train/colour/notes.txt': not a JPEG" train --data "folder:$work/text:28"
make_tree "$work/cut"
size=$(stat -c %s "$seeds/grey.jpg")
head -c $((size - 40)) "$seeds/grey.jpg" > "$work/cut/test/checks/1.jpg"  # cut inside the scan data
expect_bad_input "$work/cut/test/checks/1.jpg': corrupt or truncated" eval "$work/prefetch/last.ckpt" \
  --data "folder:$work/cut:28"
make_tree "$work/zebra"
mkdir -p "$work/zebra/test/zebra" && cp "$seeds/grey.jpg" "$work/zebra/test/zebra/1.jpg"
expect_bad_input "$work/zebra/test/zebra': class 'zebra'" train --data "folder:$work/zebra:28"
echo "PASS bad folder data exits 2 with the file named"
