// AVX-512 twin of narrow_shift_portable (narrow.cpp): 16 INT32 values per step, the tail under a
// mask, the same integer operations, so the bits are the same.
#include <immintrin.h>

#include "integer/narrow_kernels.hpp"

namespace dfp::integer {

void narrow_shift_avx512(const std::int32_t* src, std::int64_t n, int k, std::int8_t* dst) {
    constexpr std::int64_t kLanes = 16;
    constexpr int kInt8Max = 127;
    const int lo_bits = k / 2;
    const __m512i rem_mask = _mm512_set1_epi32(k == 0 ? 0 : static_cast<int>((1u << k) - 1u));
    const __m512i lo_mask = _mm512_set1_epi32(static_cast<int>((1u << lo_bits) - 1u));
    const __m512i limit = _mm512_set1_epi32(kInt8Max), one = _mm512_set1_epi32(1);
    const __m512i zero = _mm512_setzero_si512();
    const __m128i shift_k = _mm_cvtsi32_si128(k), shift_lo = _mm_cvtsi32_si128(lo_bits);
    const __m128i shift_odd = _mm_cvtsi32_si128(k % 2);
    for (std::int64_t i = 0; i < n; i += kLanes) {
        const __mmask16 lanes =
            n - i >= kLanes ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1u);
        const __m512i v = _mm512_maskz_loadu_epi32(lanes, src + i);
        // |INT32_MIN| = 2^31 as an unsigned lane; every shift below is logical.
        const __m512i magnitude = _mm512_abs_epi32(v);
        const __m512i rem = _mm512_and_si512(magnitude, rem_mask);
        const __m512i hi = _mm512_srl_epi32(rem, shift_lo);
        const __m512i lo = _mm512_sll_epi32(_mm512_and_si512(rem, lo_mask), shift_odd);
        const __mmask16 up = _mm512_cmpgt_epi32_mask(hi, lo);  // both < 2^17: signed is fine
        __m512i m = _mm512_srl_epi32(magnitude, shift_k);
        m = _mm512_min_epu32(_mm512_mask_add_epi32(m, up, m, one), limit);
        m = _mm512_mask_sub_epi32(m, _mm512_cmplt_epi32_mask(v, zero), zero, m);
        _mm512_mask_cvtepi32_storeu_epi8(dst + i, lanes, m);
    }
}

}  // namespace dfp::integer
