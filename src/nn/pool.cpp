#include "nn/pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dfp::nn {

namespace {

// The window of output index o along an axis of length `len`, clipped to [0, len).
struct Window {
    std::int64_t begin, end;
};
Window window(std::int64_t o, std::int64_t len, const PoolGeometry& g) {
    const std::int64_t start = o * g.stride - g.pad;
    return {std::max<std::int64_t>(start, 0), std::min(start + g.kernel, len)};
}

std::int64_t pooled_size(std::int64_t len, const Pool2dConfig& c) {
    const std::int64_t span = len + 2 * c.pad - c.kernel;
    std::int64_t out = (c.ceil_mode ? (span + c.stride - 1) / c.stride : span / c.stride) + 1;
    if (c.ceil_mode && (out - 1) * c.stride >= len + c.pad) --out;
    return out;
}

void check_config(const Layer& layer, const Pool2dConfig& c) {
    if (c.kernel < 1 || c.stride < 1 || c.pad < 0 || 2 * c.pad > c.kernel)
        layer.fail("needs kernel, stride >= 1 and 0 <= pad <= kernel / 2, got kernel " +
                   std::to_string(c.kernel) + ", stride " + std::to_string(c.stride) + ", pad " +
                   std::to_string(c.pad));
}

PoolGeometry pool_geometry(const Layer& layer, const Pool2dConfig& c, const Shape& src) {
    if (src.size() != 4 || shape_numel(src) == 0 || std::int64_t(src[1]) + 2 * c.pad < c.kernel ||
        std::int64_t(src[2]) + 2 * c.pad < c.kernel)
        layer.fail("expects a non-empty NHWC input at least as large as the " +
                   std::to_string(c.kernel) + "x" + std::to_string(c.kernel) +
                   " window with padding " + std::to_string(c.pad) + ", got shape " +
                   shape_string(src));
    PoolGeometry g{};
    g.n = std::int64_t(src[0]);
    g.h = std::int64_t(src[1]);
    g.w = std::int64_t(src[2]);
    g.c = std::int64_t(src[3]);
    g.kernel = c.kernel;
    g.stride = c.stride;
    g.pad = c.pad;
    g.oh = pooled_size(g.h, c);
    g.ow = pooled_size(g.w, c);
    return g;
}

Shape dst_shape(const PoolGeometry& g) {
    return {std::size_t(g.n), std::size_t(g.oh), std::size_t(g.ow), std::size_t(g.c)};
}

}  // namespace

void maxpool_forward(float* dst, std::int32_t* argmax, const float* src, const PoolGeometry& g) {
#pragma omp parallel for collapse(2) \
    schedule(static) if (g.n * g.h * g.w * g.c >= kMinParallelElements)
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oh = 0; oh < g.oh; ++oh) {
            const Window wh = window(oh, g.h, g);
            for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                const Window ww = window(ow, g.w, g);
                const std::int64_t out = ((n * g.oh + oh) * g.ow + ow) * g.c;
                float* best = dst + out;
                std::int32_t* best_at = argmax + out;
                std::fill(best, best + g.c, -std::numeric_limits<float>::infinity());
                std::fill(best_at, best_at + g.c, std::int32_t(wh.begin * g.w + ww.begin));
                // Window pixels outside, channels inside: contiguous and vectorised (a select,
                // no branch), with the same visiting order per channel as a loop per channel.
                for (std::int64_t ih = wh.begin; ih < wh.end; ++ih)
                    for (std::int64_t iw = ww.begin; iw < ww.end; ++iw) {
                        const float* x = src + ((n * g.h + ih) * g.w + iw) * g.c;
                        const std::int32_t at = std::int32_t(ih * g.w + iw);
#pragma omp simd
                        for (std::int64_t c = 0; c < g.c; ++c) {
                            // NaN wins (x != x), so it reaches the NaN check.
                            const bool take = x[c] > best[c] || x[c] != x[c];
                            best[c] = take ? x[c] : best[c];
                            best_at[c] = take ? at : best_at[c];
                        }
                    }
            }
        }
}

void maxpool_backward(float* diff_src, const std::int32_t* argmax, const float* diff_dst,
                      const PoolGeometry& g) {
    // Windows overlap within an image, so threads split images only.
#pragma omp parallel for schedule(static) if (g.n * g.h * g.w * g.c >= kMinParallelElements)
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t i = n * g.oh * g.ow; i < (n + 1) * g.oh * g.ow; ++i)
            for (std::int64_t c = 0; c < g.c; ++c)
                diff_src[(n * g.h * g.w + argmax[i * g.c + c]) * g.c + c] += diff_dst[i * g.c + c];
}

void avgpool_forward(float* dst, const float* src, const PoolGeometry& g) {
#pragma omp parallel for collapse(2) \
    schedule(static) if (g.n * g.h * g.w * g.c >= kMinParallelElements)
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oh = 0; oh < g.oh; ++oh) {
            const Window wh = window(oh, g.h, g);
            for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                const Window ww = window(ow, g.w, g);
                float* d = dst + ((n * g.oh + oh) * g.ow + ow) * g.c;
                std::fill(d, d + g.c, 0.0f);
                for (std::int64_t ih = wh.begin; ih < wh.end; ++ih)
                    for (std::int64_t iw = ww.begin; iw < ww.end; ++iw) {
                        const float* s = src + ((n * g.h + ih) * g.w + iw) * g.c;
                        for (std::int64_t c = 0; c < g.c; ++c) d[c] += s[c];
                    }
                const float inv_count = 1.0f / float((wh.end - wh.begin) * (ww.end - ww.begin));
                for (std::int64_t c = 0; c < g.c; ++c) d[c] *= inv_count;
            }
        }
}

void avgpool_backward(float* diff_src, const float* diff_dst, const PoolGeometry& g) {
#pragma omp parallel for schedule(static) if (g.n * g.h * g.w * g.c >= kMinParallelElements)
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oh = 0; oh < g.oh; ++oh) {
            const Window wh = window(oh, g.h, g);
            for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                const Window ww = window(ow, g.w, g);
                const float* dd = diff_dst + ((n * g.oh + oh) * g.ow + ow) * g.c;
                const float inv_count = 1.0f / float((wh.end - wh.begin) * (ww.end - ww.begin));
                for (std::int64_t ih = wh.begin; ih < wh.end; ++ih)
                    for (std::int64_t iw = ww.begin; iw < ww.end; ++iw) {
                        float* ds = diff_src + ((n * g.h + ih) * g.w + iw) * g.c;
                        for (std::int64_t c = 0; c < g.c; ++c) ds[c] += dd[c] * inv_count;
                    }
            }
        }
}

Pool2d::Pool2d(std::string name, const char* kind, const Pool2dConfig& config)
    : Layer(std::move(name)), kind_(kind), config_(config) {
    check_config(*this, config);
}

PoolGeometry Pool2d::geometry(const Shape& src) const {
    return pool_geometry(*this, config_, src);
}

void MaxPool2d::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    if (g.h * g.w > std::numeric_limits<std::int32_t>::max())
        fail("input " + shape_string(src[0]->shape) + " has more than 2^31 pixels per image");
    dst.resize(dst_shape(g));
    argmax_.resize(dst.numel());
    maxpool_forward(dst.data.data(), argmax_.data(), src[0]->data.data(), g);
}

void MaxPool2d::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    expect_shape(dst, dst_shape(g), "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (diff_src[0])
        maxpool_backward(diff_src[0]->data.data(), argmax_.data(), diff_dst.data.data(), g);
}

void AvgPool2d::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    dst.resize(dst_shape(g));
    avgpool_forward(dst.data.data(), src[0]->data.data(), g);
}

void AvgPool2d::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    expect_shape(dst, dst_shape(g), "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (diff_src[0]) avgpool_backward(diff_src[0]->data.data(), diff_dst.data.data(), g);
}

void GlobalAvgPool::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    expect_srcs(src, 1);
    expect_nhwc(*src[0]);
    const Shape& s = src[0]->shape;
    const std::int64_t n = std::int64_t(s[0]), hw = std::int64_t(s[1] * s[2]),
                       c = std::int64_t(s[3]);
    if (hw == 0) fail("input " + shape_string(s) + " has no pixels");
    dst.resize({s[0], 1, 1, s[3]});
    const float* x = src[0]->data.data();
    float* y = dst.data.data();
    const float inv_hw = 1.0f / float(hw);
#pragma omp parallel for schedule(static) if (n * hw * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i) {
        float* yi = y + i * c;
        std::fill(yi, yi + c, 0.0f);
        for (std::int64_t p = 0; p < hw; ++p)
            for (std::int64_t ch = 0; ch < c; ++ch) yi[ch] += x[(i * hw + p) * c + ch];
        for (std::int64_t ch = 0; ch < c; ++ch) yi[ch] *= inv_hw;
    }
}

void GlobalAvgPool::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst,
                             DiffSrcs diff_src) {
    expect_srcs(src, 1);
    expect_nhwc(*src[0]);
    const Shape& s = src[0]->shape;
    expect_shape(dst, {s[0], 1, 1, s[3]}, "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (!diff_src[0]) return;
    const std::int64_t n = std::int64_t(s[0]), hw = std::int64_t(s[1] * s[2]),
                       c = std::int64_t(s[3]);
    const float inv_hw = 1.0f / float(hw);
    float* dx = diff_src[0]->data.data();
    const float* dy = diff_dst.data.data();
#pragma omp parallel for schedule(static) if (n * hw * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t p = 0; p < hw; ++p)
            for (std::int64_t ch = 0; ch < c; ++ch)
                dx[(i * hw + p) * c + ch] += dy[i * c + ch] * inv_hw;
}

}  // namespace dfp::nn
