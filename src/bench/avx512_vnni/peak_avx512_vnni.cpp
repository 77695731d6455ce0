// The multiply-add peaks of one core, for `dfptrain bench peak`: FP32 FMA (vfmadd231ps), INT16
// dot (vpdpwssd) and INT8 dot (vpdpbusd) on zmm registers, each in 16 independent accumulators so
// that latency never limits throughput, with no memory traffic.
#include <immintrin.h>

#include "bench/peak.hpp"

namespace dfp::bench {
namespace {
constexpr int kAccumulators = 16;
}

// Each returns a value derived from the accumulators so that the loop cannot be removed.
float peak_fp32_fma_avx512(std::int64_t iterations) {
    __m512 acc[kAccumulators];
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(float(i));
    const __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    for (std::int64_t it = 0; it < iterations; ++it)
        for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_fmadd_ps(x, acc[i], y);
    __m512 sum = acc[0];
    for (int i = 1; i < kAccumulators; ++i) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

std::int32_t peak_s16_dot_avx512_vnni(std::int64_t iterations) {
    __m512i acc[kAccumulators];
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_epi32(i);
    const __m512i x = _mm512_set1_epi16(3), y = _mm512_set1_epi16(-5);
    for (std::int64_t it = 0; it < iterations; ++it)
        for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_dpwssd_epi32(acc[i], x, y);
    __m512i sum = acc[0];
    for (int i = 1; i < kAccumulators; ++i) sum = _mm512_add_epi32(sum, acc[i]);
    return _mm512_reduce_add_epi32(sum);
}

std::int32_t peak_s8_dot_avx512_vnni(std::int64_t iterations) {
    __m512i acc[kAccumulators];
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_epi32(i);
    const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-5);
    for (std::int64_t it = 0; it < iterations; ++it)
        for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    __m512i sum = acc[0];
    for (int i = 1; i < kAccumulators; ++i) sum = _mm512_add_epi32(sum, acc[i]);
    return _mm512_reduce_add_epi32(sum);
}

}  // namespace dfp::bench
