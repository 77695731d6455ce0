// AVX-512 max pooling rows (pool_kernels.hpp): up to kVectors vectors of 16 channels per step, the
// tail under a mask. The reference's rule makes one window's compare-and-select steps a serial
// chain (each depends on the best so far), so a vector at a time ran at the chain's latency; the
// vectors of a step are independent chains that overlap, in the same order per lane, so the bits
// are unchanged.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "nn/pool_kernels.hpp"

namespace dfp::nn {
namespace {

constexpr std::int64_t kLanes = 16;
constexpr int kVectors = 4;

__mmask16 lanes(std::int64_t left) {
    return left >= kLanes ? __mmask16{0xffff}
                          : static_cast<__mmask16>(left <= 0 ? 0u : (1u << left) - 1u);
}

// Output (n, oh, ow), channels [c, c + 16 V). The geometry is copied into locals: read through
// `g` after the (char-typed) mask stores, it was reloaded in the inner loop.
template <int V>
void forward_pixel(float* dst, std::uint8_t* argmax, const float* src, const PoolGeometry& g,
                   std::int64_t n, std::int64_t oh, std::int64_t ow, std::int64_t c) {
    const std::int64_t channels = g.c, kernel = g.kernel, pixel = g.c, row_step = g.w * g.c;
    const std::int64_t top = oh * g.stride - g.pad;  // the unclipped window's first row
    const std::int64_t h0 = std::max<std::int64_t>(top, 0), h1 = std::min(top + kernel, g.h);
    const std::int64_t left = ow * g.stride - g.pad;
    const std::int64_t w0 = std::max<std::int64_t>(left, 0), w1 = std::min(left + kernel, g.w);
    __mmask16 m[V];
    __m512 best[V];
    __m512i at[V];
    for (int v = 0; v < V; ++v) {
        m[v] = lanes(channels - c - kLanes * v);
        best[v] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
        at[v] = _mm512_set1_epi32(int((h0 - top) * kernel + (w0 - left)));
    }
    const float* row = src + ((n * g.h + h0) * g.w + w0) * pixel + c;
    for (std::int64_t ih = h0; ih < h1; ++ih, row += row_step) {
        const float* x_at = row;
        for (std::int64_t iw = w0; iw < w1; ++iw, x_at += pixel) {
            const __m512i here = _mm512_set1_epi32(int((ih - top) * kernel + (iw - left)));
            for (int v = 0; v < V; ++v) {
                const __m512 x = _mm512_maskz_loadu_ps(m[v], x_at + kLanes * v);
                // x > best, or x is NaN: the reference's rule, so a NaN reaches the check.
                const __mmask16 take = _mm512_cmp_ps_mask(x, best[v], _CMP_GT_OQ) |
                                       _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
                best[v] = _mm512_mask_mov_ps(best[v], take, x);
                at[v] = _mm512_mask_mov_epi32(at[v], take, here);
            }
        }
    }
    const std::int64_t out = ((n * g.oh + oh) * g.ow + ow) * channels + c;
    for (int v = 0; v < V; ++v) {
        _mm512_mask_storeu_ps(dst + out + kLanes * v, m[v], best[v]);
        _mm512_mask_cvtepi32_storeu_epi8(argmax + out + kLanes * v, m[v], at[v]);
    }
}

// Input (n, ih, iw), channels [c, c + 16 V); the geometry in locals as in forward_pixel.
template <int V>
void backward_pixel(float* diff_src, const std::uint8_t* argmax, const float* diff_dst,
                    const PoolGeometry& g, std::int64_t n, std::int64_t ih, std::int64_t iw,
                    std::int64_t c, bool write) {
    const std::int64_t channels = g.c, kernel = g.kernel, stride = g.stride, pad = g.pad;
    const std::int64_t ow_count = g.ow;
    // The outputs whose windows hold (ih, iw): oh * stride - pad <= ih < oh * stride - pad +
    // kernel, and the same along w.
    const std::int64_t lo_h = ih + pad - kernel + 1;
    const std::int64_t oh0 = lo_h <= 0 ? 0 : (lo_h + stride - 1) / stride;
    const std::int64_t oh1 = std::min(g.oh - 1, (ih + pad) / stride);
    const std::int64_t lo_w = iw + pad - kernel + 1;
    const std::int64_t ow0 = lo_w <= 0 ? 0 : (lo_w + stride - 1) / stride;
    const std::int64_t ow1 = std::min(ow_count - 1, (iw + pad) / stride);
    float* ds = diff_src + ((n * g.h + ih) * g.w + iw) * channels + c;
    __mmask16 m[V];
    __m512 sum[V];
    for (int v = 0; v < V; ++v) {
        m[v] = lanes(channels - c - kLanes * v);
        sum[v] = write ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[v], ds + kLanes * v);
    }
    // In output order, as the reference adds.
    for (std::int64_t oh = oh0; oh <= oh1; ++oh)
        for (std::int64_t ow = ow0; ow <= ow1; ++ow) {
            const std::int64_t out = ((n * g.oh + oh) * ow_count + ow) * channels + c;
            const __m512i offset = _mm512_set1_epi32(
                int((ih - (oh * stride - pad)) * kernel + (iw - (ow * stride - pad))));
            for (int v = 0; v < V; ++v) {
                const __m512i at =
                    _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m[v], argmax + out + kLanes * v));
                const __mmask16 mine = m[v] & _mm512_cmpeq_epi32_mask(at, offset);
                sum[v] = _mm512_mask_add_ps(
                    sum[v], mine, sum[v], _mm512_maskz_loadu_ps(m[v], diff_dst + out + kLanes * v));
            }
        }
    for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(ds + kLanes * v, m[v], sum[v]);
}

// Calls step.template operator()<V>(c) over the channels: kVectors vectors a step while more than
// kVectors - 1 are left (the last step's last vector masked), then a tail of 1 to kVectors - 1.
template <class Step>
void over_channels(std::int64_t channels, const Step& step) {
    static_assert(kVectors == 4, "the tail's cases are 1 .. kVectors - 1");
    std::int64_t c = 0;
    for (; channels - c > kLanes * (kVectors - 1); c += kLanes * kVectors)
        step.template operator()<kVectors>(c);
    const std::int64_t tail = (channels - c + kLanes - 1) / kLanes;
    if (tail == 3) step.template operator()<3>(c);
    if (tail == 2) step.template operator()<2>(c);
    if (tail == 1) step.template operator()<1>(c);
}

}  // namespace

void maxpool_forward_row_avx512(float* dst, std::uint8_t* argmax, const float* src,
                                const PoolGeometry& g, std::int64_t n, std::int64_t oh) {
    for (std::int64_t ow = 0; ow < g.ow; ++ow)
        over_channels(g.c, [&]<int V>(std::int64_t c) {
            forward_pixel<V>(dst, argmax, src, g, n, oh, ow, c);
        });
}

void maxpool_backward_row_avx512(float* diff_src, const std::uint8_t* argmax, const float* diff_dst,
                                 const PoolGeometry& g, std::int64_t n, std::int64_t ih,
                                 bool write) {
    for (std::int64_t iw = 0; iw < g.w; ++iw)
        over_channels(g.c, [&]<int V>(std::int64_t c) {
            backward_pixel<V>(diff_src, argmax, diff_dst, g, n, ih, iw, c, write);
        });
}

}  // namespace dfp::nn
