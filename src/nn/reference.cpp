#include "nn/reference.hpp"

namespace dfp::nn {

namespace {
// Index of src element (n, ih, iw, c) read by output (oh, ow) at kernel tap (r, s), or -1 when it
// falls into the zero padding.
std::int64_t src_index(const ConvGeometry& g, std::int64_t n, std::int64_t oh, std::int64_t ow,
                       std::int64_t r, std::int64_t s) {
    const std::int64_t ih = oh * g.stride - g.pad + r, iw = ow * g.stride - g.pad + s;
    if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return -1;
    return ((n * g.h + ih) * g.w + iw) * g.c;
}
}  // namespace

void conv2d_forward_ref(float* dst, const float* src, const float* wei, const float* bias,
                        const ConvGeometry& g) {
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oh = 0; oh < g.oh; ++oh)
            for (std::int64_t ow = 0; ow < g.ow; ++ow)
                for (std::int64_t k = 0; k < g.k; ++k) {
                    double acc = bias ? bias[k] : 0.0;
                    for (std::int64_t r = 0; r < g.kernel; ++r)
                        for (std::int64_t s = 0; s < g.kernel; ++s) {
                            const std::int64_t at = src_index(g, n, oh, ow, r, s);
                            if (at < 0) continue;
                            const float* w = wei + ((k * g.kernel + r) * g.kernel + s) * g.c;
                            for (std::int64_t c = 0; c < g.c; ++c)
                                acc += static_cast<double>(src[at + c]) * w[c];
                        }
                    dst[((n * g.oh + oh) * g.ow + ow) * g.k + k] = static_cast<float>(acc);
                }
}

void conv2d_backward_data_ref(float* diff_src, const float* diff_dst, const float* wei,
                              const ConvGeometry& g) {
    // Gathers, per src element, every (output, tap) that read it: r = ih + pad - oh * stride.
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t ih = 0; ih < g.h; ++ih)
            for (std::int64_t iw = 0; iw < g.w; ++iw)
                for (std::int64_t c = 0; c < g.c; ++c) {
                    double acc = 0.0;
                    for (std::int64_t oh = 0; oh < g.oh; ++oh)
                        for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                            const std::int64_t r = ih + g.pad - oh * g.stride;
                            const std::int64_t s = iw + g.pad - ow * g.stride;
                            if (r < 0 || r >= g.kernel || s < 0 || s >= g.kernel) continue;
                            for (std::int64_t k = 0; k < g.k; ++k)
                                acc += static_cast<double>(
                                           diff_dst[((n * g.oh + oh) * g.ow + ow) * g.k + k]) *
                                       wei[((k * g.kernel + r) * g.kernel + s) * g.c + c];
                        }
                    diff_src[((n * g.h + ih) * g.w + iw) * g.c + c] += static_cast<float>(acc);
                }
}

void conv2d_backward_weights_ref(float* diff_wei, float* diff_bias, const float* src,
                                 const float* diff_dst, const ConvGeometry& g) {
    for (std::int64_t k = 0; k < g.k; ++k) {
        double db = 0.0;
        for (std::int64_t r = 0; r < g.kernel; ++r)
            for (std::int64_t s = 0; s < g.kernel; ++s)
                for (std::int64_t c = 0; c < g.c; ++c) {
                    double dw = 0.0;
                    for (std::int64_t n = 0; n < g.n; ++n)
                        for (std::int64_t oh = 0; oh < g.oh; ++oh)
                            for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                                const std::int64_t at = src_index(g, n, oh, ow, r, s);
                                if (at < 0) continue;
                                dw += static_cast<double>(src[at + c]) *
                                      diff_dst[((n * g.oh + oh) * g.ow + ow) * g.k + k];
                            }
                    diff_wei[((k * g.kernel + r) * g.kernel + s) * g.c + c] +=
                        static_cast<float>(dw);
                }
        for (std::int64_t i = 0; i < g.n * g.oh * g.ow; ++i) db += diff_dst[i * g.k + k];
        if (diff_bias) diff_bias[k] += static_cast<float>(db);
    }
}

void linear_forward_ref(float* dst, const float* src, const float* wei, const float* bias,
                        std::int64_t n, std::int64_t in, std::int64_t out) {
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t o = 0; o < out; ++o) {
            double acc = bias ? bias[o] : 0.0;
            for (std::int64_t j = 0; j < in; ++j)
                acc += static_cast<double>(src[i * in + j]) * wei[o * in + j];
            dst[i * out + o] = static_cast<float>(acc);
        }
}

}  // namespace dfp::nn
