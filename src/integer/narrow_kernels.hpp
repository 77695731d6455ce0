// The element loop of narrow_int32 (narrow.hpp) per instruction set: dst[i] = clamp(src[i] >> k,
// +-127) with the pseudo-stochastic rounding of the magnitude, for a k the caller derived from the
// data (0..25). Each must equal the portable loop, and narrow_int32_reference, bit for bit.
#pragma once

#include <cstdint>

namespace dfp::integer {

void narrow_shift_portable(const std::int32_t* src, std::int64_t n, int k, std::int8_t* dst);
void narrow_shift_avx512(const std::int32_t* src, std::int64_t n, int k,
                         std::int8_t* dst);  // needs Isa::avx512

}  // namespace dfp::integer
