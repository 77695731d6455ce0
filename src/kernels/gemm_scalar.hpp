// Pieces of the scalar reference that other kernels and the tests reuse.
#pragma once

#include <cstdint>

#include "kernels/gemm_context.hpp"

namespace dfp::kernels {

// x rounded to nearest at 2^shift, ties away from zero, divided by 2^shift (symmetric, so the
// shifted mantissas stay in [-(2^(15-shift)), 2^(15-shift)]).
int16_t round_shift_s16(int16_t x, int shift);

// The overflow statistics of one packed s16 micro-panel of width w (see gemm_context.hpp):
// levels[l] = max over lanes and aligned blocks of 2^l pairs of the squared L2 norm.
void ref_norm_levels(const int16_t* panel, int w, int64_t kp, uint64_t* levels);

// The reference s16 packer for micro-panels of width w (4, 8, 16 or 32); null for other widths.
PackFn<int16_t> s16_ref_packer(int w);

}  // namespace dfp::kernels
