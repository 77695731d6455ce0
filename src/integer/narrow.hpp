// NITI's down-conversion of INT32 results to int8 (PAPERS.md section 2), integer only:
// b = bit length of the largest magnitude, shift every value right by k = max(b - 7, 0) with
// pseudo-stochastic rounding (format/rounding.hpp's round_shift), clamp to +-127, exponent + k.
// The true bit length is used (NITI's code takes ceil(log2 m), which wraps m = 128 to 7 bits).
#pragma once

#include <cstdint>

#include "base/isa.hpp"
#include "format/rounding.hpp"
#include "integer/tensor.hpp"

namespace dfp::integer {

// Bits of |v| (0 for 0).
int bit_length(std::int64_t v);
// The bit length of max |src[i]| over n values.
int max_bit_length(const std::int32_t* src, std::int64_t n);

// Signed v >> k (k >= 0), the magnitude rounded pseudo-stochastically, so that rounding is
// symmetric in the sign. |v| < 2^62.
inline std::int64_t shift_pseudo_stochastic(std::int64_t v, int k) {
    const auto magnitude = static_cast<std::uint64_t>(v < 0 ? -v : v);
    const auto m =
        static_cast<std::int64_t>(round_shift(magnitude, k, Rounding::pseudo_stochastic, 0));
    return v < 0 ? -m : m;
}

// dst[i] = clamp(shift_pseudo_stochastic(src[i], k), +-127) for n values; returns
// k = max(b - 7, 0). In 32-bit lanes (AVX-512 where `isa` allows, narrow_kernels.hpp);
// narrow_int32_reference is its scalar twin on round_shift, and the tests compare the two bit for
// bit on every ISA.
int narrow_int32(const std::int32_t* src, std::int64_t n, std::int8_t* dst, Isa isa = active_isa());
int narrow_int32_reference(const std::int32_t* src, std::int64_t n, std::int8_t* dst);
// Narrows src (shape's elements, exponent src_exponent) into dst: dst.exponent = src_exponent + k.
void narrow_to_int8(const std::int32_t* src, const Shape& shape, int src_exponent, Int8Tensor& dst);

}  // namespace dfp::integer
