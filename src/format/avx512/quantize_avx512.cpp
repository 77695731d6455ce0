// AVX-512 twins of quantize_scalar.cpp: 16 elements per step, the tail under a mask, the same
// IEEE operations in the same order, so results match the scalar reference bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "format/quantize_kernels.hpp"
#include "format/rounding.hpp"

namespace dfp {
namespace {

constexpr std::size_t kLanes = 16;

__mmask16 tail_mask(std::size_t n) {
    return static_cast<__mmask16>((1u << n) - 1u);
}

// The largest |x| bits so far, updated with 16 more.
inline __m512i max_abs(__m512i m, __m512 x) {
    return _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(x),
                                                _mm512_set1_epi32(0x7fffffff)));
}

std::uint32_t max_abs_bits(const float* src, std::size_t n) {
    __m512i m = _mm512_setzero_si512();
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) m = max_abs(m, _mm512_loadu_ps(src + i));
    if (i < n) m = max_abs(m, _mm512_maskz_loadu_ps(tail_mask(n - i), src + i));
    return _mm512_reduce_max_epu32(m);
}

// 16 elements of src under `mask`, +0 where keep (not null) is not > 0 (QuantizeRun::keep).
inline __m512 load_kept(const float* src, const float* keep, __mmask16 mask) {
    if (keep == nullptr) return _mm512_maskz_loadu_ps(mask, src);
    const __mmask16 on = _mm512_mask_cmp_ps_mask(mask, _mm512_maskz_loadu_ps(mask, keep),
                                                 _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_maskz_loadu_ps(on, src);
}

std::uint32_t max_abs_bits_kept(const float* src, const float* keep, std::size_t n) {
    __m512i m = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += kLanes)
        m = max_abs(m, load_kept(src + i, keep + i, n - i >= kLanes ? 0xffff : tail_mask(n - i)));
    return _mm512_reduce_max_epu32(m);
}

__m512i mix32(__m512i x) {
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(static_cast<int>(0x846ca68bu)));
    return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

// Rounds 16 magnitudes y >= 0 as round_scaled() does; `index_lo` holds the low 32 bits of each
// element's index (stochastic only).
template <Rounding kMode>
__m512 round_scaled16(__m512 y, __m512i index_lo, std::uint32_t key) {
    const __m512 one = _mm512_set1_ps(1.0f);
    if constexpr (kMode == Rounding::nearest_even) {
        return _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    } else {
        const __m512 fl = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        const __m512 frac = _mm512_sub_ps(y, fl);
        __mmask16 up = 0;
        if constexpr (kMode == Rounding::nearest_away) {
            up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
        } else if constexpr (kMode == Rounding::biased) {
            up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.25f), _CMP_GE_OQ);
        } else if constexpr (kMode == Rounding::stochastic) {
            const __m512i rand =
                mix32(_mm512_xor_si512(index_lo, _mm512_set1_epi32(static_cast<int>(key))));
            const __m512 u =
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(rand, 32 - kStochasticBits)),
                              _mm512_set1_ps(1.0f / (1 << kStochasticBits)));
            up = _mm512_cmp_ps_mask(u, frac, _CMP_LT_OQ);
        } else if constexpr (kMode == Rounding::pseudo_stochastic) {
            const __m512i bits =
                _mm512_cvttps_epi32(_mm512_mul_ps(frac, _mm512_set1_ps(1 << kPseudoFractionBits)));
            const __m512i hi = _mm512_srli_epi32(bits, kPseudoFractionBits / 2);
            const __m512i lo =
                _mm512_and_si512(bits, _mm512_set1_epi32((1 << (kPseudoFractionBits / 2)) - 1));
            up = _mm512_cmpgt_epu32_mask(hi, lo);
        }
        return _mm512_mask_add_ps(fl, up, fl, one);
    }
}

// 16 signed mantissas (int32 lanes) from 16 floats.
template <Rounding kMode>
__m512i quantize16(__m512 x, const QuantizeRun& r, __m512i index_lo, std::uint32_t key) {
    const __mmask16 negative = _mm512_movepi32_mask(_mm512_castps_si512(x));
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 y = _mm512_mul_ps(_mm512_mul_ps(ax, _mm512_set1_ps(r.scale.first)),
                                   _mm512_set1_ps(r.scale.second));
    const __m512 m =
        _mm512_min_ps(round_scaled16<kMode>(y, index_lo, key), _mm512_set1_ps(r.max_mantissa));
    const __m512i mi = _mm512_cvttps_epi32(m);
    return _mm512_mask_sub_epi32(mi, negative, _mm512_setzero_si512(), mi);
}

template <class M>
void store(M* dst, __m512i v, __mmask16 mask) {
    if constexpr (sizeof(M) == 2)
        _mm512_mask_cvtepi32_storeu_epi16(dst, mask, v);
    else
        _mm512_mask_cvtepi32_storeu_epi8(dst, mask, v);
}

// 16 mantissas with a non-temporal store; dst 16 * sizeof(M)-byte aligned.
template <class M>
void stream_store(M* dst, __m512i v) {
    if constexpr (sizeof(M) == 2)
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(v));
    else
        _mm_stream_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(v));
}

template <Rounding kMode, class M>
std::uint32_t quantize_mode(const float* src, M* dst, std::size_t n, const QuantizeRun& r) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const std::uint32_t key = rng_key(r.seed, static_cast<std::uint32_t>(r.index0 >> 32));
    const auto index_lo0 = static_cast<std::uint32_t>(r.index0);
    __m512i mx = _mm512_setzero_si512();
    std::size_t i = 0;
    const float* keep = r.keep;
    const auto step = [&](auto stored) {
        const __m512i index_lo =
            _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(index_lo0 + i)), iota);
        const __m512 x = keep ? load_kept(src + i, keep + i, 0xffff) : _mm512_loadu_ps(src + i);
        mx = max_abs(mx, x);
        stored(quantize16<kMode>(x, r, index_lo, key));
    };
    // Streaming: plain stores up to the first 16-element boundary of dst, then streaming ones.
    constexpr std::size_t kBlockBytes = kLanes * sizeof(M);
    const std::size_t head = r.stream ? (kBlockBytes - reinterpret_cast<std::uintptr_t>(dst) %
                                                           kBlockBytes) %
                                            kBlockBytes / sizeof(M)
                                      : n;
    if (r.stream && reinterpret_cast<std::uintptr_t>(dst) % sizeof(M) == 0 && head < n) {
        if (head > 0) {  // the elements before the boundary, under a mask
            const __mmask16 mask = tail_mask(head);
            const __m512i index_lo =
                _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(index_lo0)), iota);
            const __m512 x = load_kept(src, keep, mask);
            mx = max_abs(mx, x);
            store(dst, quantize16<kMode>(x, r, index_lo, key), mask);
            i = head;
        }
        for (; i + kLanes <= n; i += kLanes) step([&](__m512i v) { stream_store(dst + i, v); });
        _mm_sfence();
    }
    for (; i + kLanes <= n; i += kLanes) step([&](__m512i v) { store(dst + i, v, 0xffff); });
    if (i < n) {
        const __mmask16 mask = tail_mask(n - i);
        const __m512i index_lo =
            _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(index_lo0 + i)), iota);
        const __m512 x = load_kept(src + i, keep ? keep + i : nullptr, mask);
        mx = max_abs(mx, x);
        store(dst + i, quantize16<kMode>(x, r, index_lo, key), mask);
    }
    return _mm512_reduce_max_epu32(mx);
}

template <class M>
std::uint32_t quantize(const float* src, M* dst, std::size_t n, const QuantizeRun& r) {
    // The RNG key changes where the high 32 bits of the index do: split the run there.
    const std::uint64_t boundary = (r.index0 | 0xffffffffull) + 1;
    if (r.rounding == Rounding::stochastic && r.index0 + n > boundary) {
        const std::size_t head = boundary - r.index0;
        const std::uint32_t head_max = quantize(src, dst, head, r);
        QuantizeRun rest = r;
        rest.index0 = boundary;
        if (r.keep) rest.keep = r.keep + head;
        return std::max(head_max, quantize(src + head, dst + head, n - head, rest));
    }
    switch (r.rounding) {
        case Rounding::nearest_even:
            return quantize_mode<Rounding::nearest_even>(src, dst, n, r);
        case Rounding::nearest_away:
            return quantize_mode<Rounding::nearest_away>(src, dst, n, r);
        case Rounding::truncate:
            return quantize_mode<Rounding::truncate>(src, dst, n, r);
        case Rounding::biased:
            return quantize_mode<Rounding::biased>(src, dst, n, r);
        case Rounding::stochastic:
            return quantize_mode<Rounding::stochastic>(src, dst, n, r);
        case Rounding::pseudo_stochastic:
            return quantize_mode<Rounding::pseudo_stochastic>(src, dst, n, r);
    }
    return 0;  // unreachable: every mode is a case
}

template <class M>
__m512i load_widen(const M* src, __mmask16 mask) {
    if constexpr (sizeof(M) == 2)
        return _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(mask, src));
    else
        return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, src));
}

template <class M>
void dequantize(const M* src, float* dst, std::size_t n, Pow2 scale) {
    const __m512 f1 = _mm512_set1_ps(scale.first), f2 = _mm512_set1_ps(scale.second);
    for (std::size_t i = 0; i < n; i += kLanes) {
        const __mmask16 mask = n - i >= kLanes ? 0xffff : tail_mask(n - i);
        const __m512 v = _mm512_cvtepi32_ps(load_widen(src + i, mask));
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_mul_ps(_mm512_mul_ps(v, f1), f2));
    }
}

}  // namespace

const QuantizeKernels& avx512_quantize_kernels() {
    static const QuantizeKernels k{"avx512",
                                   max_abs_bits,
                                   max_abs_bits_kept,
                                   quantize<std::int16_t>,
                                   quantize<std::int8_t>,
                                   dequantize<std::int16_t>,
                                   dequantize<std::int8_t>};
    return k;
}

}  // namespace dfp
