// The channel loops of the AVX-512 layer rows (pool_avx512.cpp, lrn_avx512.cpp) walk a pixel's
// channels 16 FP32 lanes at a time; the last vector is masked to the channels left.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace dfp::nn {

inline constexpr std::int64_t kLanes = 16;

// The mask of the first min(left, 16) lanes; left >= 1.
inline __mmask16 lanes(std::int64_t left) {
    return left >= kLanes ? __mmask16{0xffff} : static_cast<__mmask16>((1u << left) - 1u);
}

}  // namespace dfp::nn
