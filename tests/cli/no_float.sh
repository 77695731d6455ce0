#!/usr/bin/env bash
# NITI's training step is integer-only: the object code of the integer engine's step
# (src/integer/{narrow,layers,loss,update,net}.cpp and avx512/narrow_avx512.cpp: narrowing,
# layers, loss gradient, update and the step that chains them) holds no floating-point
# instruction and calls no libm function.
# Scanned: SSE/AVX scalar and packed FP arithmetic, comparisons and conversions (cvt*), and x87
# (f*). Bitwise moves and logic on xmm registers (movaps, xorps, pxor ...) are allowed: the
# compiler uses them for integer copies and zeroing. The integer GEMM the layers call
# (kernels::gemm_s8s8s32) is outside this scan: its INT32 path is exact integer by construction
# (kernels/gemm.hpp), and its translation unit also holds the FP32-output GEMMs.
# As a check that the scan can fail, it must find FP instructions in integer/boundary.cpp, which
# quantizes images and reports the loss in floating point outside the step.
# Usage: no_float.sh OBJECT_FILE...  (the objects of the dfp library)
set -u
fp_mnemonic='^v?(cvt[a-z0-9]*|(add|sub|mul|div|sqrt|min|max|cmp[a-z]*|round|rcp[0-9a-z]*|rsqrt[0-9a-z]*|fn?m(add|sub)[0-9]*|hadd|hsub|dp)(ss|sd|ps|pd|sh|ph)|u?comis[sd])$|^f[a-z0-9]+$'
libm='^(exp|exp2|log|log2|pow|ldexp|frexp|floor|ceil|sqrt|nearbyint|rint|round|trunc|fmod)f?$'
fp_count() {  # prints how many FP instructions and libm calls the object $1 holds
  local insns calls
  insns=$(objdump -d --no-show-raw-insn "$1" | awk -F'\t' 'NF >= 2 {split($2, w, " "); print w[1]}' \
          | grep -cE "$fp_mnemonic")
  calls=$(nm -u "$1" | awk '{print $2}' | grep -cE "$libm")
  echo $((insns + calls))
}
step=0 boundary=0
for obj in "$@"; do
  case "$obj" in
    */src/integer/narrow.cpp.o|*/src/integer/layers.cpp.o|*/src/integer/loss.cpp.o|\
    */src/integer/update.cpp.o|*/src/integer/net.cpp.o|*/src/integer/avx512/narrow_avx512.cpp.o)
      n=$(fp_count "$obj")
      if [ "$n" -ne 0 ]; then
        echo "FAIL: $obj holds $n floating-point instructions or libm calls:"
        objdump -d --no-show-raw-insn "$obj" | awk -F'\t' 'NF >= 2 {split($2, w, " "); if (w[1] ~ /'"$fp_mnemonic"'/) print}' | head -20
        exit 1
      fi
      echo "PASS $(basename "$obj"): no floating point"
      step=$((step + 1)) ;;
    */src/integer/boundary.cpp.o)
      boundary=$(fp_count "$obj") ;;
  esac
done
[ "$step" -eq 6 ] || { echo "FAIL: found $step of the 6 integer step objects"; exit 1; }
[ "$boundary" -gt 0 ] || { echo "FAIL: the scan finds no floating point in boundary.cpp.o either"; exit 1; }
echo "PASS the scan finds $boundary in boundary.cpp.o (floating point outside the step)"
