#include "nn/pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "base/isa.hpp"
#include "nn/onednn.hpp"
#include "nn/pool_kernels.hpp"

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

Pool2d::Pool2d(std::string name, Algorithm algorithm, const Pool2dConfig& config)
    : Layer(std::move(name)), algorithm_(algorithm), config_(config) {
    check_config(*this, config);
}

const char* Pool2d::kind() const {
    return algorithm_ == Algorithm::max ? "maxpool2d" : "avgpool2d";
}

Pool2d::~Pool2d() = default;

PoolGeometry Pool2d::geometry(const Shape& src) const {
    return pool_geometry(*this, config_, src);
}

struct Pool2d::OnednnPlan {
    dnnl::algorithm algorithm;
    dnnl::memory::desc src_md, dst_md;  // (N, C, H, W) and (N, C, OH, OW) in NHWC order
    dnnl::memory::dims strides, kernel, padding_l, padding_r;
    dnnl::pooling_forward::primitive_desc fwd_pd;
    dnnl::pooling_forward fwd;
    dnnl::pooling_backward bwd;  // made on the first backward
    dnnl::memory workspace;      // max pooling: each window's argmax, forward to backward
};

namespace {
// oneDNN's output size is (len + pad_l + pad_r - kernel) / stride + 1, rounded down. The right
// padding that makes it pooled_size: pad, or in ceil mode what the last window reaches past src.
// That window starts inside src, so this is less than the kernel, as oneDNN requires.
std::int64_t right_padding(std::int64_t len, std::int64_t out, const PoolGeometry& g) {
    return std::max(g.pad, (out - 1) * g.stride + g.kernel - len - g.pad);
}
}  // namespace

Pool2d::OnednnPlan& Pool2d::plan(const PoolGeometry& g) {
    auto& slot = plans_[{g.n, g.h, g.w, g.c}];
    if (slot) return *slot;
    auto p = std::make_unique<OnednnPlan>();
    try {
        using dnnl::memory;
        // Average pooling excludes the padding from its divisor, as avgpool_forward does.
        p->algorithm = algorithm_ == Algorithm::max ? dnnl::algorithm::pooling_max
                                                    : dnnl::algorithm::pooling_avg_exclude_padding;
        p->src_md =
            memory::desc({g.n, g.c, g.h, g.w}, memory::data_type::f32, memory::format_tag::nhwc);
        p->dst_md =
            memory::desc({g.n, g.c, g.oh, g.ow}, memory::data_type::f32, memory::format_tag::nhwc);
        p->strides = {g.stride, g.stride};
        p->kernel = {g.kernel, g.kernel};
        p->padding_l = {g.pad, g.pad};
        p->padding_r = {right_padding(g.h, g.oh, g), right_padding(g.w, g.ow, g)};
        p->fwd_pd = dnnl::pooling_forward::primitive_desc(
            dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, p->algorithm, p->src_md,
                                        p->dst_md, p->strides, p->kernel, p->padding_l,
                                        p->padding_r),
            cpu_engine());
        p->fwd = dnnl::pooling_forward(p->fwd_pd);
        if (algorithm_ == Algorithm::max)
            p->workspace = memory(p->fwd_pd.workspace_desc(), cpu_engine());
    } catch (const dnnl::error& e) {
        fail(
            "oneDNN cannot set up pooling of input " +
            shape_string({std::size_t(g.n), std::size_t(g.h), std::size_t(g.w), std::size_t(g.c)}) +
            ": " + e.what());
    }
    slot = std::move(p);
    return *slot;
}

void Pool2d::onednn_forward(float* dst, const float* src, const PoolGeometry& g) {
    OnednnPlan& p = plan(g);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(p.src_md, src)},
                                               {DNNL_ARG_DST, wrap(p.dst_md, dst)}};
    if (p.workspace) args[DNNL_ARG_WORKSPACE] = p.workspace;
    p.fwd.execute(cpu_stream(), args);
    cpu_stream().wait();
}

void Pool2d::onednn_backward(float* diff_src, const float* diff_dst, const PoolGeometry& g,
                             bool write) {
    OnednnPlan& p = plan(g);
    try {
        if (!p.bwd)
            p.bwd = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(
                dnnl::pooling_backward::desc(p.algorithm, p.src_md, p.dst_md, p.strides, p.kernel,
                                             p.padding_l, p.padding_r),
                cpu_engine(), p.fwd_pd));
    } catch (const dnnl::error& e) {
        fail(std::string("oneDNN cannot set up the backward pooling: ") + e.what());
    }
    const std::int64_t n = g.n * g.h * g.w * g.c;
    const GradOutput grad(diff_src, n, write, diff_src_scratch_);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DIFF_DST, wrap(p.dst_md, diff_dst)},
                                               {DNNL_ARG_DIFF_SRC, wrap(p.src_md, grad.data())}};
    if (p.workspace) args[DNNL_ARG_WORKSPACE] = p.workspace;
    p.bwd.execute(cpu_stream(), args);
    cpu_stream().wait();
    grad.finish();
}

namespace {
// True when every one of the n values of src is above lowest(): no NaN, -Inf or -FLT_MAX.
bool all_above_lowest(const float* src, std::int64_t n) {
    std::int64_t below = 0;
#pragma omp parallel for simd reduction(+ : below) schedule(static) if (n >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i) below += !(src[i] > std::numeric_limits<float>::lowest());
    return below == 0;
}
}  // namespace

void MaxPool2d::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    dst.resize(dst_shape(g));
    const float* x = src[0]->data.data();
    if (active_isa() >= Isa::avx512 && g.kernel <= kMaxPoolByteKernel) {
        path_ = Path::rows;
        argmax_rows_.resize(dst.numel());
        float* y = dst.data.data();
        std::uint8_t* at = argmax_rows_.data();
#pragma omp parallel for collapse(2) \
    schedule(static) if (g.n * g.h * g.w * g.c >= kMinParallelElements)
        for (std::int64_t n = 0; n < g.n; ++n)
            for (std::int64_t oh = 0; oh < g.oh; ++oh)
                maxpool_forward_row_avx512(y, at, x, g, n, oh);
        return;
    }
    path_ = all_above_lowest(x, std::int64_t(src[0]->numel())) ? Path::onednn : Path::reference;
    if (path_ == Path::onednn) return onednn_forward(dst.data.data(), x, g);
    if (g.h * g.w > std::numeric_limits<std::int32_t>::max())
        fail("input " + shape_string(src[0]->shape) + " has more than 2^31 pixels per image");
    argmax_.resize(dst.numel());
    maxpool_forward(dst.data.data(), argmax_.data(), x, g);
}

void MaxPool2d::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

void MaxPool2d::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst,
                              DiffSrcs diff_src, Overwrite overwrite) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    expect_shape(dst, dst_shape(g), "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (!diff_src[0]) return;
    float* out = diff_src[0]->data.data();
    if (path_ == Path::rows) {
        if (argmax_rows_.size() != diff_dst.numel())
            fail("backward without a forward of this shape");
        const bool write = overwrite[0];
        const float* dy = diff_dst.data.data();
        const std::uint8_t* at = argmax_rows_.data();
#pragma omp parallel for collapse(2) \
    schedule(static) if (g.n * g.h * g.w * g.c >= kMinParallelElements)
        for (std::int64_t n = 0; n < g.n; ++n)
            for (std::int64_t ih = 0; ih < g.h; ++ih)
                maxpool_backward_row_avx512(out, at, dy, g, n, ih, write);
        return;
    }
    if (path_ == Path::onednn) return onednn_backward(out, diff_dst.data.data(), g, overwrite[0]);
    if (overwrite[0]) std::fill_n(out, diff_src[0]->numel(), 0.0f);  // the reference adds
    maxpool_backward(out, argmax_.data(), diff_dst.data.data(), g);
}

void AvgPool2d::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    dst.resize(dst_shape(g));
    onednn_forward(dst.data.data(), src[0]->data.data(), g);
}

void AvgPool2d::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

void AvgPool2d::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst,
                              DiffSrcs diff_src, Overwrite overwrite) {
    expect_srcs(src, 1);
    const PoolGeometry g = geometry(src[0]->shape);
    expect_shape(dst, dst_shape(g), "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (diff_src[0])
        onednn_backward(diff_src[0]->data.data(), diff_dst.data.data(), g, overwrite[0]);
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
