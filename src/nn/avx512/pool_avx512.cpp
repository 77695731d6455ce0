// AVX-512 max pooling rows (pool_kernels.hpp): up to kVectors vectors of 16 channels per step, the
// tail under a mask. The reference's rule makes one window's compare-and-select steps a serial
// chain (each depends on the best so far), so a vector at a time ran at the chain's latency; the
// vectors of a step are independent chains that overlap, in the same order per lane, so the bits
// are unchanged.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "nn/avx512/lanes.hpp"
#include "nn/pool_kernels.hpp"

namespace dfp::nn {
namespace {

constexpr int kVectors = 4;

// One output's window, clipped to the input: rows [h0, h1), columns [w0, w1); argmax offsets count
// from its unclipped corner (top, left).
struct Window {
    std::int64_t top, left, h0, h1, w0, w1;
};

// Output (n, oh, ow) at dst, argmax (its channel 0), channels [c, c + 16 V) of its window in image
// src. The geometry is copied into locals: read through `g` after the (char-typed) mask stores, it
// was reloaded in the inner loop.
template <int V>
void forward_pixel(float* dst, std::uint8_t* argmax, const float* src, const PoolGeometry& g,
                   const Window& win, std::int64_t c) {
    const std::int64_t channels = g.c, kernel = g.kernel, row_step = g.w * g.c;
    __mmask16 m[V];
    __m512 best[V];
    __m512i at[V];
    for (int v = 0; v < V; ++v) {
        m[v] = lanes(channels - c - kLanes * v);
        best[v] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
        at[v] = _mm512_set1_epi32(int((win.h0 - win.top) * kernel + (win.w0 - win.left)));
    }
    const float* row = src + (win.h0 * g.w + win.w0) * channels + c;
    for (std::int64_t ih = win.h0; ih < win.h1; ++ih, row += row_step) {
        const float* x_at = row;
        for (std::int64_t iw = win.w0; iw < win.w1; ++iw, x_at += channels) {
            const __m512i here = _mm512_set1_epi32(int((ih - win.top) * kernel + (iw - win.left)));
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
    for (int v = 0; v < V; ++v) {
        _mm512_mask_storeu_ps(dst + c + kLanes * v, m[v], best[v]);
        _mm512_mask_cvtepi32_storeu_epi8(argmax + c + kLanes * v, m[v], at[v]);
    }
}

// The outputs whose windows hold input (ih, iw): rows [oh0, oh1], columns [ow0, ow1].
struct Outputs {
    std::int64_t oh0, oh1, ow0, ow1;
};

// Input (ih, iw) of image n at ds (its channel 0), channels [c, c + 16 V), from the outputs `o`;
// the geometry in locals as in forward_pixel.
template <int V>
void backward_pixel(float* ds, const std::uint8_t* argmax, const float* diff_dst,
                    const PoolGeometry& g, std::int64_t n, std::int64_t ih, std::int64_t iw,
                    const Outputs& o, std::int64_t c, bool write) {
    const std::int64_t channels = g.c, kernel = g.kernel, stride = g.stride, pad = g.pad;
    const std::int64_t ow_count = g.ow;
    __mmask16 m[V];
    __m512 sum[V];
    for (int v = 0; v < V; ++v) {
        m[v] = lanes(channels - c - kLanes * v);
        sum[v] = write ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[v], ds + c + kLanes * v);
    }
    // In output order, as the reference adds.
    for (std::int64_t oh = o.oh0; oh <= o.oh1; ++oh)
        for (std::int64_t ow = o.ow0; ow <= o.ow1; ++ow) {
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
    for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(ds + c + kLanes * v, m[v], sum[v]);
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
    Window win;
    win.top = oh * g.stride - g.pad;
    win.h0 = std::max<std::int64_t>(win.top, 0);
    win.h1 = std::min(win.top + g.kernel, g.h);
    const float* image = src + n * g.h * g.w * g.c;
    for (std::int64_t ow = 0; ow < g.ow; ++ow) {
        win.left = ow * g.stride - g.pad;
        win.w0 = std::max<std::int64_t>(win.left, 0);
        win.w1 = std::min(win.left + g.kernel, g.w);
        const std::int64_t out = ((n * g.oh + oh) * g.ow + ow) * g.c;
        over_channels(g.c, [&]<int V>(std::int64_t c) {
            forward_pixel<V>(dst + out, argmax + out, image, g, win, c);
        });
    }
}

void maxpool_backward_row_avx512(float* diff_src, const std::uint8_t* argmax, const float* diff_dst,
                                 const PoolGeometry& g, std::int64_t n, std::int64_t ih,
                                 bool write) {
    // oh * stride - pad <= ih < oh * stride - pad + kernel, and the same along w.
    Outputs o;
    const std::int64_t lo_h = ih + g.pad - g.kernel + 1;
    o.oh0 = lo_h <= 0 ? 0 : (lo_h + g.stride - 1) / g.stride;
    o.oh1 = std::min(g.oh - 1, (ih + g.pad) / g.stride);
    for (std::int64_t iw = 0; iw < g.w; ++iw) {
        const std::int64_t lo_w = iw + g.pad - g.kernel + 1;
        o.ow0 = lo_w <= 0 ? 0 : (lo_w + g.stride - 1) / g.stride;
        o.ow1 = std::min(g.ow - 1, (iw + g.pad) / g.stride);
        float* ds = diff_src + ((n * g.h + ih) * g.w + iw) * g.c;
        over_channels(g.c, [&]<int V>(std::int64_t c) {
            backward_pixel<V>(ds, argmax, diff_dst, g, n, ih, iw, o, c, write);
        });
    }
}

}  // namespace dfp::nn
