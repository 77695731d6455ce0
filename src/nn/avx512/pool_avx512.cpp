// AVX-512 max pooling rows (pool_kernels.hpp): 16 channels per step, the tail under a mask.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "nn/pool_kernels.hpp"

namespace dfp::nn {
namespace {

constexpr std::int64_t kLanes = 16;

__mmask16 lanes(std::int64_t left) {
    return left >= kLanes ? __mmask16{0xffff} : static_cast<__mmask16>((1u << left) - 1u);
}

}  // namespace

void maxpool_forward_row_avx512(float* dst, std::uint8_t* argmax, const float* src,
                                const PoolGeometry& g, std::int64_t n, std::int64_t oh) {
    const std::int64_t top = oh * g.stride - g.pad;  // the unclipped window's first row
    const std::int64_t h0 = std::max<std::int64_t>(top, 0), h1 = std::min(top + g.kernel, g.h);
    const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (std::int64_t ow = 0; ow < g.ow; ++ow) {
        const std::int64_t left = ow * g.stride - g.pad;
        const std::int64_t w0 = std::max<std::int64_t>(left, 0),
                           w1 = std::min(left + g.kernel, g.w);
        const std::int64_t out = ((n * g.oh + oh) * g.ow + ow) * g.c;
        for (std::int64_t c = 0; c < g.c; c += kLanes) {
            const __mmask16 m = lanes(g.c - c);
            __m512 best = neg_inf;
            __m512i at = _mm512_set1_epi32(int((h0 - top) * g.kernel + (w0 - left)));
            for (std::int64_t ih = h0; ih < h1; ++ih) {
                const float* row = src + ((n * g.h + ih) * g.w) * g.c + c;
                for (std::int64_t iw = w0; iw < w1; ++iw) {
                    const __m512 x = _mm512_maskz_loadu_ps(m, row + iw * g.c);
                    // x > best, or x is NaN: the reference's rule, so a NaN reaches the check.
                    const __mmask16 take = _mm512_cmp_ps_mask(x, best, _CMP_GT_OQ) |
                                           _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
                    best = _mm512_mask_mov_ps(best, take, x);
                    at = _mm512_mask_mov_epi32(
                        at, take, _mm512_set1_epi32(int((ih - top) * g.kernel + (iw - left))));
                }
            }
            _mm512_mask_storeu_ps(dst + out + c, m, best);
            _mm512_mask_cvtepi32_storeu_epi8(argmax + out + c, m, at);
        }
    }
}

void maxpool_backward_row_avx512(float* diff_src, const std::uint8_t* argmax, const float* diff_dst,
                                 const PoolGeometry& g, std::int64_t n, std::int64_t ih,
                                 bool write) {
    // The outputs whose windows hold row ih: oh * stride - pad <= ih < oh * stride - pad + kernel.
    const std::int64_t lo_h = ih + g.pad - g.kernel + 1;
    const std::int64_t oh0 = lo_h <= 0 ? 0 : (lo_h + g.stride - 1) / g.stride;
    const std::int64_t oh1 = std::min(g.oh - 1, (ih + g.pad) / g.stride);
    for (std::int64_t iw = 0; iw < g.w; ++iw) {
        const std::int64_t lo_w = iw + g.pad - g.kernel + 1;
        const std::int64_t ow0 = lo_w <= 0 ? 0 : (lo_w + g.stride - 1) / g.stride;
        const std::int64_t ow1 = std::min(g.ow - 1, (iw + g.pad) / g.stride);
        float* ds = diff_src + ((n * g.h + ih) * g.w + iw) * g.c;
        for (std::int64_t c = 0; c < g.c; c += kLanes) {
            const __mmask16 m = lanes(g.c - c);
            __m512 sum = write ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, ds + c);
            // In output order, as the reference adds.
            for (std::int64_t oh = oh0; oh <= oh1; ++oh)
                for (std::int64_t ow = ow0; ow <= ow1; ++ow) {
                    const std::int64_t out = ((n * g.oh + oh) * g.ow + ow) * g.c + c;
                    const int offset = int((ih - (oh * g.stride - g.pad)) * g.kernel +
                                           (iw - (ow * g.stride - g.pad)));
                    const __m512i at = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, argmax + out));
                    const __mmask16 mine =
                        m & _mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(offset));
                    sum = _mm512_mask_add_ps(sum, mine, sum,
                                             _mm512_maskz_loadu_ps(m, diff_dst + out));
                }
            _mm512_mask_storeu_ps(ds + c, m, sum);
        }
    }
}

}  // namespace dfp::nn
