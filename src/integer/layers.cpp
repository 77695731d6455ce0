#include "integer/layers.hpp"

#include <algorithm>
#include <utility>

#include "base/error.hpp"
#include "integer/narrow.hpp"
#include "kernels/gemm.hpp"

namespace dfp::integer {

// src (N, H, W, C), dst (N, OH, OW, K).
struct ConvGeometry {
    std::int64_t n, h, w, c, oh, ow;
    std::int64_t rows() const { return n * oh * ow; }
};

namespace {

using kernels::DfpMatrix;
using kernels::Op;

constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;

std::int64_t dim(const Shape& s, std::size_t i) {
    return static_cast<std::int64_t>(s[i]);
}

// C (m, n) = op(A) op(B), exact in INT32 (the GEMM refuses, with a dfp::Error, a product it
// cannot prove to fit).
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, const std::int8_t* a, std::int64_t lda,
          Op op_a, const std::int8_t* b, std::int64_t ldb, Op op_b, std::int32_t* c) {
    kernels::gemm_s8s8s32(m, n, k, DfpMatrix<std::int8_t>{.data = a, .ld = lda, .op = op_a},
                          DfpMatrix<std::int8_t>{.data = b, .ld = ldb, .op = op_b}, c, n);
}

// The patch matrix (N*OH*OW, kernel*kernel*C) of src (N, H, W, C): row (n, oh, ow), column
// (r, s, ch) as the weights' (K, KH, KW, C); zeros in the padding (exact in any exponent).
void im2col(const std::int8_t* src, const ConvGeometry& g, std::int64_t kernel, std::int64_t stride,
            std::int64_t pad, std::vector<std::int8_t>& col) {
    const std::int64_t patch = kernel * kernel * g.c;
    col.resize(static_cast<std::size_t>(g.rows() * patch));
#pragma omp parallel for if (g.rows() * patch >= kParallelElements)
    for (std::int64_t row = 0; row < g.rows(); ++row) {
        const std::int64_t n = row / (g.oh * g.ow), oy = row / g.ow % g.oh, ox = row % g.ow;
        std::int8_t* out = col.data() + row * patch;
        for (std::int64_t r = 0; r < kernel; ++r)
            for (std::int64_t s = 0; s < kernel; ++s, out += g.c) {
                const std::int64_t y = oy * stride - pad + r, x = ox * stride - pad + s;
                if (y < 0 || y >= g.h || x < 0 || x >= g.w)
                    std::fill(out, out + g.c, std::int8_t{0});
                else
                    std::copy_n(src + ((n * g.h + y) * g.w + x) * g.c, g.c, out);
            }
    }
}

}  // namespace

void IntLayer::fail(const std::string& what) const {
    throw Error(std::string(kind()) + " '" + name_ + "': " + what);
}

IntConv2d::IntConv2d(std::string name, const IntConvConfig& config, Int8Weight weight)
    : IntLayer(std::move(name)), config_(config), weight_(std::move(weight)) {
    const Shape expected = {
        static_cast<std::size_t>(config.out_channels), static_cast<std::size_t>(config.kernel),
        static_cast<std::size_t>(config.kernel), static_cast<std::size_t>(config.in_channels)};
    if (weight_.value.shape != expected || config.stride < 1 || config.pad < 0)
        fail("weight " + shape_string(weight_.value.shape) + " does not fit the configuration " +
             shape_string(expected) + " (stride >= 1, pad >= 0)");
}

void IntConv2d::forward(const Int8Tensor& src, Int8Tensor& dst) {
    const IntConvConfig& c = config_;
    if (src.shape.size() != 4 || dim(src.shape, 3) != c.in_channels ||
        dim(src.shape, 1) + 2 * c.pad < c.kernel || dim(src.shape, 2) + 2 * c.pad < c.kernel)
        fail("expects NHWC input with " + std::to_string(c.in_channels) +
             " channels at least as large as the kernel, got " + shape_string(src.shape));
    const ConvGeometry g{dim(src.shape, 0),
                         dim(src.shape, 1),
                         dim(src.shape, 2),
                         c.in_channels,
                         (dim(src.shape, 1) + 2 * c.pad - c.kernel) / c.stride + 1,
                         (dim(src.shape, 2) + 2 * c.pad - c.kernel) / c.stride + 1};
    const std::int64_t patch = c.kernel * c.kernel * g.c;
    im2col(src.data.data(), g, c.kernel, c.stride, c.pad, col_);
    acc_.resize(static_cast<std::size_t>(g.rows() * c.out_channels));
    gemm(g.rows(), c.out_channels, patch, col_.data(), patch, Op::n, weight_.value.data.data(),
         patch, Op::t, acc_.data());
    narrow_to_int8(acc_.data(),
                   {static_cast<std::size_t>(g.n), static_cast<std::size_t>(g.oh),
                    static_cast<std::size_t>(g.ow), static_cast<std::size_t>(c.out_channels)},
                   src.exponent + weight_.value.exponent, dst);
}

void IntConv2d::backward(const Int8Tensor& src, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                         Int8Tensor* diff_src) {
    const IntConvConfig& c = config_;
    if (diff_dst.shape != dst.shape)
        fail("diff_dst " + shape_string(diff_dst.shape) + " is not shaped like dst " +
             shape_string(dst.shape));
    const ConvGeometry g{dim(src.shape, 0), dim(src.shape, 1), dim(src.shape, 2),
                         c.in_channels,     dim(dst.shape, 1), dim(dst.shape, 2)};
    const std::int64_t patch = c.kernel * c.kernel * g.c;
    // WTGRAD: (K, patch) = diff_dst^T (K, rows) x patches (rows, patch).
    grad_.resize(weight_.value.numel());
    gemm(c.out_channels, patch, g.rows(), diff_dst.data.data(), c.out_channels, Op::t, col_.data(),
         patch, Op::n, grad_.data());
    if (!diff_src) return;
    pixels_.resize(src.numel());
    if (c.stride == 1 && c.pad < c.kernel)
        backward_data_as_convolution(g, diff_dst);
    else
        backward_data_by_col2im(g, diff_dst);
    narrow_to_int8(pixels_.data(), src.shape, diff_dst.exponent + weight_.value.exponent,
                   *diff_src);
}

// BPROP of a stride-1 convolution is the stride-1 convolution of diff_dst (N, OH, OW, K), padded
// by kernel-1-pad, with the weights flipped in space and K and C swapped: (C, KH, KW, K), row c
// holding wei (k, KH-1-r, KW-1-s, c). Its int8 patches are a quarter of the INT32 patch
// gradients of col2im, and it writes each pixel once.
void IntConv2d::backward_data_as_convolution(const ConvGeometry& g, const Int8Tensor& diff_dst) {
    const IntConvConfig& c = config_;
    const std::int64_t kk = c.kernel * c.kernel, patch = kk * c.out_channels;
    flipped_.resize(weight_.value.numel());
    const std::int8_t* wei = weight_.value.data.data();
    for (std::int64_t k = 0; k < c.out_channels; ++k)
        for (std::int64_t rs = 0; rs < kk; ++rs)
            for (std::int64_t ch = 0; ch < g.c; ++ch)
                flipped_[(ch * kk + (kk - 1 - rs)) * c.out_channels + k] =
                    wei[(k * kk + rs) * g.c + ch];
    const ConvGeometry bprop{g.n, g.oh, g.ow, c.out_channels, g.h, g.w};
    im2col(diff_dst.data.data(), bprop, c.kernel, 1, c.kernel - 1 - c.pad, col_bprop_);
    gemm(bprop.rows(), g.c, patch, col_bprop_.data(), patch, Op::n, flipped_.data(), patch, Op::t,
         pixels_.data());
}

// Any convolution: patch gradients (rows, patch) = diff_dst (rows, K) x wei (K, patch), summed
// onto the pixels they were read from (the adjoint of im2col); the padding's entries are dropped.
void IntConv2d::backward_data_by_col2im(const ConvGeometry& g, const Int8Tensor& diff_dst) {
    const IntConvConfig& c = config_;
    const std::int64_t patch = c.kernel * c.kernel * g.c;
    std::vector<std::int32_t>& dcol = acc_;
    dcol.resize(static_cast<std::size_t>(g.rows() * patch));
    std::fill(pixels_.begin(), pixels_.end(), 0);
    gemm(g.rows(), patch, c.out_channels, diff_dst.data.data(), c.out_channels, Op::n,
         weight_.value.data.data(), patch, Op::n, dcol.data());
    // One image per thread: the patches of different images never touch the same pixel.
#pragma omp parallel for if (g.rows() * patch >= kParallelElements)
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oy = 0; oy < g.oh; ++oy)
            for (std::int64_t ox = 0; ox < g.ow; ++ox) {
                const std::int32_t* in = dcol.data() + ((n * g.oh + oy) * g.ow + ox) * patch;
                for (std::int64_t r = 0; r < c.kernel; ++r)
                    for (std::int64_t s = 0; s < c.kernel; ++s, in += g.c) {
                        const std::int64_t y = oy * c.stride - c.pad + r,
                                           x = ox * c.stride - c.pad + s;
                        if (y < 0 || y >= g.h || x < 0 || x >= g.w) continue;
                        std::int32_t* out = pixels_.data() + ((n * g.h + y) * g.w + x) * g.c;
                        for (std::int64_t ch = 0; ch < g.c; ++ch) out[ch] += in[ch];
                    }
            }
}

void IntConv2d::update(const UpdateRule& rule) {
    update_weight(weight_, grad_.data(), rule);
}

IntLinear::IntLinear(std::string name, Int8Weight weight)
    : IntLayer(std::move(name)), weight_(std::move(weight)) {
    if (weight_.value.shape.size() != 2)
        fail("weight must be (out, in), got " + shape_string(weight_.value.shape));
}

void IntLinear::forward(const Int8Tensor& src, Int8Tensor& dst) {
    const std::int64_t out = dim(weight_.value.shape, 0), in = dim(weight_.value.shape, 1);
    const std::int64_t n = src.shape.empty() ? 0 : dim(src.shape, 0);
    if (n == 0 || static_cast<std::int64_t>(src.numel()) != n * in)
        fail("expects {N, ...} input with " + std::to_string(in) + " values per sample, got " +
             shape_string(src.shape));
    acc_.resize(static_cast<std::size_t>(n * out));
    gemm(n, out, in, src.data.data(), in, Op::n, weight_.value.data.data(), in, Op::t, acc_.data());
    acc_exponent_ = src.exponent + weight_.value.exponent;
    narrow_to_int8(acc_.data(), {static_cast<std::size_t>(n), static_cast<std::size_t>(out)},
                   src.exponent + weight_.value.exponent, dst);
}

void IntLinear::backward(const Int8Tensor& src, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                         Int8Tensor* diff_src) {
    if (diff_dst.shape != dst.shape)
        fail("diff_dst " + shape_string(diff_dst.shape) + " is not shaped like dst " +
             shape_string(dst.shape));
    const std::int64_t out = dim(weight_.value.shape, 0), in = dim(weight_.value.shape, 1);
    const std::int64_t n = dim(dst.shape, 0);
    grad_.resize(weight_.value.numel());
    gemm(out, in, n, diff_dst.data.data(), out, Op::t, src.data.data(), in, Op::n, grad_.data());
    if (!diff_src) return;
    acc_.resize(src.numel());
    gemm(n, in, out, diff_dst.data.data(), out, Op::n, weight_.value.data.data(), in, Op::n,
         acc_.data());
    narrow_to_int8(acc_.data(), src.shape, diff_dst.exponent + weight_.value.exponent, *diff_src);
}

void IntLinear::update(const UpdateRule& rule) {
    update_weight(weight_, grad_.data(), rule);
}

void IntRelu::forward(const Int8Tensor& src, Int8Tensor& dst) {
    dst.resize(src.shape);
    dst.exponent = src.exponent;
    std::transform(src.data.begin(), src.data.end(), dst.data.begin(),
                   [](std::int8_t v) { return std::max<std::int8_t>(v, 0); });
}

void IntRelu::backward(const Int8Tensor& /*src*/, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                       Int8Tensor* diff_src) {
    if (!diff_src) return;
    if (diff_dst.shape != dst.shape)
        fail("diff_dst " + shape_string(diff_dst.shape) + " is not shaped like dst " +
             shape_string(dst.shape));
    diff_src->resize(dst.shape);
    diff_src->exponent = diff_dst.exponent;
    std::transform(dst.data.begin(), dst.data.end(), diff_dst.data.begin(), diff_src->data.begin(),
                   [](std::int8_t y, std::int8_t d) { return y > 0 ? d : std::int8_t{0}; });
}

IntMaxPool2d::IntMaxPool2d(std::string name, const IntPoolConfig& config)
    : IntLayer(std::move(name)), config_(config) {
    if (config.kernel < 1 || config.kernel > kMaxPoolKernel || config.stride < 1)
        fail("kernel must be 1.." + std::to_string(kMaxPoolKernel) + " and stride >= 1, got " +
             std::to_string(config.kernel) + " and " + std::to_string(config.stride));
}

void IntMaxPool2d::forward(const Int8Tensor& src, Int8Tensor& dst) {
    const std::int64_t k = config_.kernel, st = config_.stride;
    if (src.shape.size() != 4 || dim(src.shape, 1) < k || dim(src.shape, 2) < k)
        fail("expects NHWC input at least as large as the " + std::to_string(k) + "x" +
             std::to_string(k) + " window, got " + shape_string(src.shape));
    const std::int64_t n = dim(src.shape, 0), h = dim(src.shape, 1), w = dim(src.shape, 2),
                       c = dim(src.shape, 3);
    const std::int64_t oh = (h - k) / st + 1, ow = (w - k) / st + 1;
    dst.resize(
        {src.shape[0], static_cast<std::size_t>(oh), static_cast<std::size_t>(ow), src.shape[3]});
    dst.exponent = src.exponent;
    argmax_.resize(dst.numel());
    // Window pixels outside, channels inside (contiguous, so the compare and select vectorise);
    // each channel still visits its window in row order, so the first maximum wins.
#pragma omp parallel for if (static_cast <std::int64_t>(dst.numel()) >= kParallelElements)
    for (std::int64_t row = 0; row < n * oh * ow; ++row) {
        const std::int64_t b = row / (oh * ow), oy = row / ow % oh, ox = row % ow;
        const std::int8_t* window = src.data.data() + ((b * h + oy * st) * w + ox * st) * c;
        std::int8_t* best = dst.data.data() + row * c;
        std::uint8_t* where = argmax_.data() + row * c;
        std::copy_n(window, c, best);
        std::fill_n(where, c, std::uint8_t{0});
        for (std::int64_t r = 0; r < k; ++r)
            for (std::int64_t s = 0; s < k; ++s) {
                const std::int8_t* pixel = window + (r * w + s) * c;
                const auto position = static_cast<std::uint8_t>(r * k + s);
                for (std::int64_t ch = 0; ch < c; ++ch) {
                    const bool above = pixel[ch] > best[ch];
                    best[ch] = above ? pixel[ch] : best[ch];
                    where[ch] = above ? position : where[ch];
                }
            }
    }
}

void IntMaxPool2d::backward(const Int8Tensor& src, const Int8Tensor& dst,
                            const Int8Tensor& diff_dst, Int8Tensor* diff_src) {
    if (!diff_src) return;
    if (diff_dst.shape != dst.shape)
        fail("diff_dst " + shape_string(diff_dst.shape) + " is not shaped like dst " +
             shape_string(dst.shape));
    const std::int64_t k = config_.kernel, st = config_.stride;
    const std::int64_t h = dim(src.shape, 1), w = dim(src.shape, 2), c = dim(src.shape, 3);
    const std::int64_t oh = dim(dst.shape, 1), ow = dim(dst.shape, 2);
    acc_.assign(src.numel(), 0);
    for (std::int64_t row = 0; row < dim(dst.shape, 0) * oh * ow; ++row) {
        const std::int64_t b = row / (oh * ow), oy = row / ow % oh, ox = row % ow;
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const std::int64_t r = argmax_[row * c + ch] / k, s = argmax_[row * c + ch] % k;
            acc_[((b * h + oy * st + r) * w + ox * st + s) * c + ch] += diff_dst.data[row * c + ch];
        }
    }
    narrow_to_int8(acc_.data(), src.shape, diff_dst.exponent, *diff_src);
}

}  // namespace dfp::integer
