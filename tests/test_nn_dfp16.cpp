// DFP16 Conv2d and Linear against their FP32 twins (same weights, same data), pass by pass.
//
// Bound. Each GEMM operand is quantized with one exponent per tensor and headroom shift q (the
// policy's, precision::kDfp16Shift by default): 16-bit mantissas put the largest magnitude in
// [2^(14-q), 2^(15-q)) * 2^E, so rounding to nearest errs by rms 2^E / sqrt(12). The GEMM's input
// shift s (kernels::kDefaultInputShift) rounds each mantissa again to a multiple of 2^s, which
// adds a variance of (4^s + 2) / 12 * 4^E for s >= 1 (rounding of integers whose low s bits are
// uniform). With 2^E <= max|x| * 2^(q-14) and max|x| <= 5 sigma for the normal data here
// (<= 2 * 10^4 elements per tensor: P(max > 5 sigma) ~ 1%; the seeds are fixed), each operand
// errs by at most
//   5 * 2^(q-14) * sqrt(1/12 + [s >= 1] (4^s + 2) / 12)  of its rms  (8.8e-5 for q = s = 0),
// and a product of two operands with independent errors by sqrt(2) times that, norm-wise. The
// FP32 twin's own rounding (~1e-7) does not count. We assert ||dfp16 - fp32||_2 <= 1.5 * that
// * ||fp32||_2 (1.9e-4 for q = s = 0, 3.7e-4 for q = 1; the 1.5 covers the sampling noise of
// small tensors) for every pass: FPROP dst, BPROP diff_src, WTGRAD weight.grad, the last two as
// the increments that backward adds. Typical errors are 2-3x lower (max|x| nearer 4 sigma, and not
// always at the bottom of its octave). 8-bit formats (step >= max|x| / 128) give errors above
// 1e-2 and must fail.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "format/quantize.hpp"
#include "kernels/gemm.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/conv_lowering.hpp"
#include "nn/join.hpp"
#include "nn/linear.hpp"
#include "nn/net.hpp"
#include "nn/norm.hpp"
#include "nn/reference.hpp"
#include "precision/policy.hpp"

namespace dfp::nn {
namespace {

// The bound above for quantization headroom q.
double rel_bound(int q) {
    constexpr int s = kernels::kDefaultInputShift;
    const double shift_variance = s >= 1 ? (std::ldexp(1.0, 2 * s) + 2.0) / 12.0 : 0.0;
    const double operand = 5.0 * std::ldexp(1.0, q - 14) * std::sqrt(1.0 / 12.0 + shift_variance);
    return 1.5 * std::sqrt(2.0) * operand;
}
const double kRelBound = rel_bound(precision::kDfp16Shift);  // the default DFP16 policy

std::vector<float> normal(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// ||(got - start) - (want - start)|| / ||want - start||: the error of what a pass wrote or added,
// after checking that at least a quarter of it is non-zero (an all-zero result cannot pass; a 1x1
// stride-2 convolution's BPROP reaches only a quarter of the pixels).
double relative_error(std::span<const float> got, std::span<const float> want,
                      const std::vector<float>& start) {
    EXPECT_EQ(got.size(), want.size());
    double diff2 = 0.0, want2 = 0.0;
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double base = start.empty() ? 0.0 : double(start[i]);
        const double w = double(want[i]) - base, g = double(got[i]) - base;
        diff2 += (g - w) * (g - w);
        want2 += w * w;
        nonzero += w != 0.0;
    }
    EXPECT_GE(4 * nonzero, want.size()) << "FP32 result mostly zero";
    return std::sqrt(diff2 / want2);
}

struct PassErrors {
    double fprop, bprop, wtgrad;
    double max() const { return std::max({fprop, bprop, wtgrad}); }
};

precision::LayerPrecision dfp16_precision(const char* spec = "dfp16") {
    return precision::Policy::parse(spec).for_layer("middle", 1, 3);
}

// Runs forward and backward of `dfp` and its FP32 twin `fp32` (same configuration otherwise) on
// the same normal src, weights and diff_dst, starting the gradients at the same non-zero values
// (backward adds), and returns the relative error of each pass.
PassErrors compare_with_fp32(Layer& dfp, Layer& fp32, const Shape& src_shape) {
    for (std::size_t i = 0; i < fp32.params().size(); ++i) {
        Param& p = *fp32.params()[i];
        p.value = normal(p.value.size(), 10 + unsigned(i));
        p.grad = normal(p.grad.size(), 20 + unsigned(i));
        dfp.params()[i]->value = p.value;
        dfp.params()[i]->grad = p.grad;
    }
    const Param& wei = *fp32.params()[0];  // weight, then bias
    const std::vector<float> grad_start = wei.grad;
    const std::vector<float> bias_grad_start =
        fp32.params().size() > 1 ? fp32.params()[1]->grad : std::vector<float>{};
    Tensor src(src_shape);
    src.data = aligned_copy<float>(normal(src.numel(), 3));
    const Tensor* srcs[] = {&src};
    Tensor dst_dfp, dst_fp32;
    dfp.forward(srcs, dst_dfp, {});
    fp32.forward(srcs, dst_fp32, {});
    Tensor diff_dst(dst_fp32.shape);
    diff_dst.data = aligned_copy<float>(normal(diff_dst.numel(), 4));
    Tensor diff_src_dfp(src.shape), diff_src_fp32(src.shape);
    diff_src_dfp.data = diff_src_fp32.data = aligned_copy<float>(normal(src.numel(), 5));
    const std::vector<float> diff_src_start(diff_src_fp32.data.begin(), diff_src_fp32.data.end());
    Tensor* diff_dfp[] = {&diff_src_dfp};
    Tensor* diff_fp32[] = {&diff_src_fp32};
    dfp.backward(srcs, dst_dfp, diff_dst, diff_dfp);
    fp32.backward(srcs, dst_fp32, diff_dst, diff_fp32);
    // The bias gradient is FP32 in both: sums of diff_dst in another order (~1e-7).
    if (fp32.params().size() > 1) {
        EXPECT_LE(relative_error(dfp.params()[1]->grad, fp32.params()[1]->grad, bias_grad_start),
                  1e-5);
    }
    return {relative_error(dst_dfp.data, dst_fp32.data, {}),
            relative_error(diff_src_dfp.data, diff_src_fp32.data, diff_src_start),
            relative_error(dfp.params()[0]->grad, wei.grad, grad_start)};
}

struct ConvCase {
    const char* what;
    std::int64_t n, h, w, c, k, kernel, stride, pad;
};

void PrintTo(const ConvCase& t, std::ostream* os) {
    *os << t.what;
}

Conv2dConfig conv_config(const ConvCase& t, const precision::LayerPrecision& precision) {
    return {.in_channels = t.c,
            .out_channels = t.k,
            .kernel = t.kernel,
            .stride = t.stride,
            .pad = t.pad,
            .bias = true,
            .precision = precision};
}

PassErrors conv_errors(const ConvCase& t, const precision::LayerPrecision& precision) {
    Conv2d dfp("conv", conv_config(t, precision)), fp32("conv", conv_config(t, {}));
    return compare_with_fp32(
        dfp, fp32, {std::size_t(t.n), std::size_t(t.h), std::size_t(t.w), std::size_t(t.c)});
}

void print_row(const char* layer, const std::string& what, const char* format, const PassErrors& e,
               double bound) {
    std::printf("%s %-34s %s  fprop %.2e bprop %.2e wtgrad %.2e  bound %.1e  %s\n", layer,
                what.c_str(), format, e.fprop, e.bprop, e.wtgrad, bound,
                e.max() <= bound ? "PASS" : "FAIL");
}

const ConvCase kConvCases[] = {
    {"1x1 s1 (direct GEMM) 2x8x8x16->32", 2, 8, 8, 16, 32, 1, 1, 0},
    {"1x1 s2 (subsampled) 2x9x7x16->8", 2, 9, 7, 16, 8, 1, 2, 0},
    {"3x3 s1 p1 2x9x9x16->16", 2, 9, 9, 16, 16, 3, 1, 1},
    {"3x3 s2 p1 odd 3x9x7x5->6", 3, 9, 7, 5, 6, 3, 2, 1},
    {"7x7 s2 p3 stem 2x15x13x3->8", 2, 15, 13, 3, 8, 7, 2, 3},
    {"5x5 s1 p2 odd 2x6x5x3->4", 2, 6, 5, 3, 4, 5, 1, 2},
    // BPROP phases: one tap each (2x2 s2), phases of 1 and 2 taps with padding larger than the
    // kernel's reach (3x3 s3 p2), phases no tap reaches (2x2 s3), and a stride-1 one whose
    // padding exceeds the kernel (1x1 p1: a window starting past the pixel).
    {"2x2 s2 p0 2x8x6x8->8", 2, 8, 6, 8, 8, 2, 2, 0},
    {"3x3 s3 p2 2x10x11x7->5", 2, 10, 11, 7, 5, 3, 3, 2},
    {"2x2 s3 p1 odd 1x8x7x5->3", 1, 8, 7, 5, 3, 2, 3, 1},
    {"1x1 s1 p1 2x5x6x8->4", 2, 5, 6, 8, 4, 1, 1, 1},
};

class Dfp16Conv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Dfp16Conv2d, EveryPassWithinBoundOfFp32) {
    const ConvCase t = GetParam();
    const PassErrors e = conv_errors(t, dfp16_precision());
    print_row("conv2d", t.what, "dfp16", e, kRelBound);
    EXPECT_LE(e.fprop, kRelBound);
    EXPECT_LE(e.bprop, kRelBound);
    EXPECT_LE(e.wtgrad, kRelBound);
}

INSTANTIATE_TEST_SUITE_P(Dfp16, Dfp16Conv2d, ::testing::ValuesIn(kConvCases));

// Conv2d with its ReLU fused against the same convolution followed by a Relu layer: the same bits
// in every precision (the GEMM's epilogue and relu_forward both keep NaN and -0, FP32 runs
// relu_forward itself, and backward masks diff_dst as relu_backward does). dst, diff_src (added
// to), weight and bias gradients; shapes that take the direct GEMM, the subsampled src, the
// patches with a stride-1 BPROP convolution and col2im.
TEST(Conv2dFusedRelu, GivesWhatConvThenReluGives) {
    const ConvCase cases[] = {kConvCases[0], kConvCases[1], kConvCases[2], kConvCases[3]};
    for (const char* spec : {"fp32", "dfp16", "dfp8", "dfp8,all.granularity=block"})
        for (const ConvCase& t : cases) {
            const precision::LayerPrecision prec = dfp16_precision(spec);
            Conv2dConfig config = conv_config(t, prec);
            Conv2d plain("conv", config);
            config.relu = true;
            Conv2d fused("conv", config);
            Relu relu("relu");
            for (std::size_t i = 0; i < plain.params().size(); ++i) {
                plain.params()[i]->value =
                    normal(plain.params()[i]->value.size(), 10 + unsigned(i));
                fused.params()[i]->value = plain.params()[i]->value;
                plain.params()[i]->grad = normal(plain.params()[i]->grad.size(), 20 + unsigned(i));
                fused.params()[i]->grad = plain.params()[i]->grad;
            }
            Tensor src({std::size_t(t.n), std::size_t(t.h), std::size_t(t.w), std::size_t(t.c)});
            src.data = aligned_copy<float>(normal(src.numel(), 3));
            const Tensor* srcs[] = {&src};
            Tensor y, z, dst;
            plain.forward(srcs, y, {});
            const Tensor* ys[] = {&y};
            relu.forward(ys, z, {});
            fused.forward(srcs, dst, {});
            Tensor diff_dst(dst.shape), diff_y(y.shape);
            diff_dst.data = aligned_copy<float>(normal(diff_dst.numel(), 4));
            Tensor diff_src_plain(src.shape), diff_src_fused(src.shape);
            diff_src_plain.data = diff_src_fused.data = aligned_copy<float>(normal(src.numel(), 5));
            Tensor* dys[] = {&diff_y};
            Overwrite fresh;
            fresh.set(0);
            relu.backward_into(ys, z, diff_dst, dys, fresh);
            Tensor* plain_out[] = {&diff_src_plain};
            Tensor* fused_out[] = {&diff_src_fused};
            plain.backward(srcs, y, diff_y, plain_out);
            fused.backward(srcs, dst, diff_dst, fused_out);
            const std::string what = std::string(spec) + " " + t.what;
            std::size_t zeros = 0;
            for (float v : dst.data) zeros += v == 0.0f;
            EXPECT_GT(4 * zeros, dst.numel()) << what << ": the ReLU clipped too little to test";
            const auto same = [&](std::span<const float> got, std::span<const float> want,
                                  const char* tensor) {
                ASSERT_EQ(got.size(), want.size()) << what << ": " << tensor;
                EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size_bytes()))
                    << what << ": " << tensor;
            };
            same(dst.data, z.data, "dst");
            same(diff_src_fused.data, diff_src_plain.data, "diff_src");
            same(fused.weight().grad, plain.weight().grad, "weight gradient");
            same(fused.bias()->grad, plain.bias()->grad, "bias gradient");
        }
}

// A NaN reaching a fused ReLU stays a NaN, as it does through a Relu layer (the loss, or the next
// DFP16 layer's quantization, then names it); oneDNN's post-op must not turn it into 0.
TEST(Conv2dFusedRelu, NanPassesInFp32) {
    const ConvCase t = kConvCases[2];
    Conv2dConfig config = conv_config(t, {});
    config.relu = true;
    Conv2d fused("conv", config);
    Tensor src({std::size_t(t.n), std::size_t(t.h), std::size_t(t.w), std::size_t(t.c)});
    src.data = aligned_copy<float>(normal(src.numel(), 3));
    src.data[((0 * t.h + 4) * t.w + 4) * t.c + 3] = std::numeric_limits<float>::quiet_NaN();
    const Tensor* srcs[] = {&src};
    Tensor dst;
    fused.forward(srcs, dst, {});
    std::size_t nans = 0;
    for (float v : dst.data) nans += std::isnan(v);
    // A 3x3 window reaches the pixel from 9 positions, in each of the K output channels.
    EXPECT_EQ(nans, std::size_t(9 * t.k));
}

struct LinearCase {
    std::int64_t n, in, out;
};

PassErrors linear_errors(const LinearCase& t, const precision::LayerPrecision& precision) {
    Linear dfp("fc", {.in_features = t.in, .out_features = t.out, .precision = precision});
    Linear fp32("fc", {.in_features = t.in, .out_features = t.out});
    return compare_with_fp32(dfp, fp32, {std::size_t(t.n), std::size_t(t.in)});
}

std::string linear_what(const LinearCase& t) {
    return "n=" + std::to_string(t.n) + " " + std::to_string(t.in) + "->" + std::to_string(t.out);
}

// The default policy, and headroom 0 against its own, halved bound.
TEST(Dfp16Linear, EveryPassWithinBoundOfFp32) {
    for (const LinearCase t : {LinearCase{8, 37, 11}, LinearCase{16, 256, 64}})
        for (const int q : {precision::kDfp16Shift, 0}) {
            const std::string spec = "dfp16,all.shift=" + std::to_string(q);
            const PassErrors e = linear_errors(t, dfp16_precision(spec.c_str()));
            const double bound = rel_bound(q);
            print_row("linear", linear_what(t), q == 0 ? "dfp16 shift 0" : "dfp16", e, bound);
            EXPECT_LE(e.fprop, bound) << linear_what(t) << " shift " << q;
            EXPECT_LE(e.bprop, bound) << linear_what(t) << " shift " << q;
            EXPECT_LE(e.wtgrad, bound) << linear_what(t) << " shift " << q;
        }
}

// The bound separates 16-bit from 8-bit mantissas: the same passes in DFP8-sized formats (int16
// storage, 8-bit mantissas) exceed it, each of them.
TEST(Dfp16Linear, EightBitFormatsExceedTheBound) {
    const precision::LayerPrecision eight = dfp16_precision("dfp16,all.bits=8");
    const std::vector<std::pair<std::string, PassErrors>> runs = {
        {"linear " + linear_what({16, 256, 64}), linear_errors({16, 256, 64}, eight)},
        {std::string("conv2d ") + kConvCases[2].what, conv_errors(kConvCases[2], eight)},
        {std::string("conv2d ") + kConvCases[0].what, conv_errors(kConvCases[0], eight)}};
    for (const auto& [what, e] : runs) {
        std::printf("%-40s 8-bit  fprop %.2e bprop %.2e wtgrad %.2e  must exceed %.1e\n",
                    what.c_str(), e.fprop, e.bprop, e.wtgrad, kRelBound);
        EXPECT_GT(e.fprop, kRelBound) << what;
        EXPECT_GT(e.bprop, kRelBound) << what;
        EXPECT_GT(e.wtgrad, kRelBound) << what;
    }
}

// DFP8 on the int8 GEMM gives the bits of DFP16 with 8-bit mantissas on the int16 GEMM: the same
// quantization, and every K block of these shapes is one exact INT32 sum in both, converted and
// scaled once. So every pass of the int8 path (offset packing, compensation, lowering of int8
// patches, flipped int8 weights) is checked bit for bit against the tested int16 path.
TEST(Dfp8Layers, Int8PathGivesTheBitsOfEightBitMantissasOnTheInt16Path) {
    const precision::LayerPrecision dfp8 = dfp16_precision("dfp8");
    const precision::LayerPrecision int16 = dfp16_precision("dfp16,all.bits=8,all.shift=0");
    ASSERT_EQ(dfp8.compute, precision::Compute::dfp8);
    auto same = [](Layer& x, Layer& y, const Shape& src_shape) {
        Tensor src(src_shape);
        src.data = aligned_copy<float>(normal(src.numel(), 3));
        for (std::size_t i = 0; i < x.params().size(); ++i) {
            x.params()[i]->value = y.params()[i]->value = normal(x.params()[i]->value.size(), 7);
            x.params()[i]->grad = y.params()[i]->grad = normal(x.params()[i]->grad.size(), 8);
        }
        const Tensor* srcs[] = {&src};
        Tensor dx, dy;
        x.forward(srcs, dx, {});
        y.forward(srcs, dy, {});
        Tensor diff_dst(dx.shape);
        diff_dst.data = aligned_copy<float>(normal(diff_dst.numel(), 4));
        Tensor gx(src.shape), gy(src.shape);
        Tensor* dxs[] = {&gx};
        Tensor* dys[] = {&gy};
        x.backward(srcs, dx, diff_dst, dxs);
        y.backward(srcs, dy, diff_dst, dys);
        return dx.data == dy.data && gx.data == gy.data &&
               x.params()[0]->grad == y.params()[0]->grad;
    };
    for (const ConvCase& t : kConvCases) {
        Conv2d x("conv", conv_config(t, dfp8)), y("conv", conv_config(t, int16));
        EXPECT_TRUE(same(x, y, {std::size_t(t.n), std::size_t(t.h), std::size_t(t.w),
                                std::size_t(t.c)}))
            << t.what;
    }
    for (const LinearCase t : {LinearCase{8, 37, 11}, LinearCase{16, 256, 64}}) {
        Linear x("fc", {.in_features = t.in, .out_features = t.out, .precision = dfp8});
        Linear y("fc", {.in_features = t.in, .out_features = t.out, .precision = int16});
        EXPECT_TRUE(same(x, y, {std::size_t(t.n), std::size_t(t.in)})) << linear_what(t);
    }
}

// MXINT8 (dfp8 with block formats): each pass quantizes its operands in blocks of 32 along its
// own reduction. The layer's results equal the product of the dequantized operands, quantized by
// the format library along that reduction (I for FPROP, O for BPROP, N for WTGRAD), up to FP32
// summation; with the blocks along any other dimension they would not. Input features get scales
// 2^-12 .. 2^12 so that a block straddling them would lose the small ones.
TEST(Dfp8Layers, BlockScaledLinearQuantizesEveryPassAlongItsReduction) {
    const std::int64_t n = 40, in = 100, out = 70;
    const precision::LayerPrecision mx = dfp16_precision("dfp8,all.granularity=block");
    Linear layer("fc", {.in_features = in, .out_features = out, .bias = false, .precision = mx});
    Tensor src({std::size_t(n), std::size_t(in)});
    src.data = aligned_copy<float>(normal(src.numel(), 3));
    for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t c = 0; c < in; ++c) src.data[std::size_t(r * in + c)] *= std::ldexp(1.0f, int(c % 25) - 12);
    Param& w = *layer.params()[0];
    w.value = normal(w.value.size(), 5);
    std::fill(w.grad.begin(), w.grad.end(), 0.0f);
    const Tensor* srcs[] = {&src};
    Tensor dst, diff_dst({std::size_t(n), std::size_t(out)});
    diff_dst.data = aligned_copy<float>(normal(diff_dst.numel(), 6));
    layer.forward(srcs, dst, {});
    Tensor diff_src({std::size_t(n), std::size_t(in)});
    Tensor* dsrcs[] = {&diff_src};
    layer.backward(srcs, dst, diff_dst, dsrcs);

    // x (rows, k) quantized in blocks of 32 along k, dequantized.
    const Format format{.bits = 8, .granularity = Granularity::block, .block = 32};
    auto mx_values = [&](std::span<const float> x, std::int64_t rows, std::int64_t k) {
        return dequantize(quantize<std::int8_t>(x.data(), {std::size_t(rows), std::size_t(k)},
                                                 format, {}, "x"));
    };
    auto transpose = [](std::span<const float> x, std::int64_t rows, std::int64_t cols) {
        std::vector<float> t(x.size());
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c)
                t[std::size_t(c * rows + r)] = x[std::size_t(r * cols + c)];
        return t;
    };
    // c (m, p) = a (m, k) b (p, k)^T in double; the worst |c - got| relative to sum |a b|.
    auto worst = [](std::span<const float> a, std::span<const float> b, std::int64_t m,
                    std::int64_t p, std::int64_t k, std::span<const float> got) {
        double err = 0;
        for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < p; ++j) {
                double c = 0, mag = 0;
                for (std::int64_t q = 0; q < k; ++q) {
                    const double t = double(a[std::size_t(i * k + q)]) * b[std::size_t(j * k + q)];
                    c += t;
                    mag += std::abs(t);
                }
                err = std::max(err, std::abs(c - got[std::size_t(i * p + j)]) / mag);
            }
        return err;
    };
    const double fprop = worst(mx_values(src.data, n, in), mx_values(w.value, out, in), n, out, in, dst.data);
    const double bprop = worst(mx_values(diff_dst.data, n, out),
                               mx_values(transpose(w.value, out, in), in, out), n, in, out, diff_src.data);
    const double wtgrad = worst(mx_values(transpose(diff_dst.data, n, out), out, n),
                                mx_values(transpose(src.data, n, in), in, n), out, in, n, w.grad);
    std::printf("linear mxint8 vs dequantized operands: fprop %.1e bprop %.1e wtgrad %.1e\n", fprop,
                bprop, wtgrad);
    EXPECT_LE(fprop, 1e-6);
    EXPECT_LE(bprop, 1e-6);
    EXPECT_LE(wtgrad, 1e-6);
}

// The block-scaled convolution: every pass within an 8-bit bound of FP32, on every lowering.
TEST(Dfp8Layers, BlockScaledConvolutionWithinEightBitsOfFp32) {
    const precision::LayerPrecision mx = dfp16_precision("dfp8,all.granularity=block");
    for (const ConvCase& t : kConvCases) {
        const PassErrors e = conv_errors(t, mx);
        std::printf("conv2d %-34s mxint8  fprop %.2e bprop %.2e wtgrad %.2e  bound 2.0e-02\n", t.what,
                    e.fprop, e.bprop, e.wtgrad);
        EXPECT_LE(e.max(), 0.02) << t.what;  // 8-bit mantissas: ~2^-8 per operand, well below
    }
}

// Stochastic rounding draws a fresh stream for every iteration (and tensor): re-using one stream
// would round the same value the same way at every step, a bias that never averages out.
TEST(Dfp16Linear, StochasticRoundingIsFreshEachIterationAndReproducible) {
    const precision::LayerPrecision stochastic = dfp16_precision("dfp16,all.rounding=stochastic");
    Linear fc("fc", {.in_features = 64, .out_features = 16, .precision = stochastic});
    Tensor src({8, 64});
    src.data = aligned_copy<float>(normal(src.numel(), 3));
    const Tensor* srcs[] = {&src};
    Tensor at0, again0, at1;
    fc.forward(srcs, at0, {Mode::train, 0});
    fc.forward(srcs, again0, {Mode::train, 0});
    fc.forward(srcs, at1, {Mode::train, 1});
    EXPECT_EQ(at0.data, again0.data);
    EXPECT_NE(at0.data, at1.data);
}

TEST(Dfp16Linear, AxisFormatsWhereTheGemmCanScaleAndNamedErrorsWhereNot) {
    // Per-sample activations (rows of src) scale FPROP's rows: FPROP works and stays accurate.
    const precision::LayerPrecision per_row = dfp16_precision("dfp16,activations.granularity=axis");
    Linear fc("fc7", {.in_features = 37, .out_features = 11, .precision = per_row});
    Tensor src({4, 37});
    src.data = aligned_copy<float>(normal(src.numel(), 6));
    const Tensor* srcs[] = {&src};
    Tensor dst;
    fc.forward(srcs, dst, {});
    std::vector<float> ref(dst.numel());
    linear_forward_ref(ref.data(), src.data.data(), fc.weight().value.data(),
                       fc.bias()->value.data(), 4, 37, 11);
    EXPECT_LE(relative_error(dst.data, ref, {}), kRelBound);
    // ... but WTGRAD sums over the samples, so their exponents would vary along its K.
    Tensor diff_dst(dst.shape);
    diff_dst.data = aligned_copy<float>(normal(diff_dst.numel(), 7));
    try {
        Tensor* no_diff_src[] = {nullptr};
        fc.backward(srcs, dst, diff_dst, no_diff_src);
        FAIL() << "no error for per-sample exponents along WTGRAD's K";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("linear 'fc7': wtgrad"), std::string::npos) << what;
        EXPECT_NE(what.find("'fc7.src'"), std::string::npos) << what;
    }
}

// im2col copies mantissas between pixels and channels, so the lowered convolution needs one
// activation exponent per tensor; a per-channel format is refused with the tensor named.
TEST(Dfp16Conv2d, LoweringRefusesPerChannelActivationsNamingTheTensor) {
    const ConvCase& t = kConvCases[2];  // 3x3
    Conv2d conv("conv4", conv_config(t, dfp16_precision("dfp16,activations.granularity=axis,"
                                                        "activations.axis=1")));
    Tensor src({std::size_t(t.n), std::size_t(t.h), std::size_t(t.w), std::size_t(t.c)});
    src.data = aligned_copy<float>(normal(src.numel(), 11));
    const Tensor* srcs[] = {&src};
    Tensor dst;
    try {
        conv.forward(srcs, dst, {});
        FAIL() << "no error for per-channel activations in a lowered convolution";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("conv2d 'conv4': fprop: tensor 'conv4.src'"),
                  std::string::npos)
            << e.what();
    }
}

// The lowering against the naive references (nn/reference.cpp), exactly: integer data small
// enough that every sum is exact in FP32 and in double.
TEST(Dfp16Lowering, PatchesCol2imAndBpropConvolutionMatchTheNaiveConvolution) {
    for (const ConvCase& t : kConvCases) {
        Conv2d conv("conv", conv_config(t, {}));
        const ConvGeometry g =
            conv.geometry({std::size_t(t.n), std::size_t(t.h), std::size_t(t.w), std::size_t(t.c)});
        std::mt19937 rng(8);
        std::uniform_int_distribution<int> small(-20, 20);
        const auto integers = [&](std::size_t n) {
            std::vector<float> v(n);
            for (auto& x : v) x = float(small(rng));
            return v;
        };
        const std::int64_t rows = g.n * g.oh * g.ow, patch = g.kernel * g.kernel * g.c;
        const std::vector<float> src = integers(std::size_t(g.n * g.h * g.w * g.c));
        const std::vector<float> wei = integers(std::size_t(g.k * patch));
        // Mantissas equal the values: with max |x| = 20 and bits = 6, the exponent is 0.
        Format six_bits = dfp16_tensor();
        six_bits.bits = 6;
        const Dfp16Tensor src_q = quantize<std::int16_t>(
            src.data(), {std::size_t(g.n * g.h * g.w), std::size_t(g.c)}, six_bits, {}, "src");
        ASSERT_EQ(src_q.exponents, std::vector<int>{0});
        Dfp16Tensor col;
        im2col(src_q, patch_geometry(g), col);
        std::vector<float> dst(std::size_t(rows * g.k)), ref_dst(dst.size());
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t k = 0; k < g.k; ++k)
                for (std::int64_t j = 0; j < patch; ++j)
                    dst[i * g.k + k] += float(col.mantissas[i * patch + j]) * wei[k * patch + j];
        conv2d_forward_ref(ref_dst.data(), src.data(), wei.data(), nullptr, g);
        EXPECT_EQ(dst, ref_dst) << "im2col " << t.what;
        // PatchSource fills any block of the same matrix with the same bits (blocks crossing
        // taps, rows and images, of awkward sizes), rows `ld` apart, and nothing past its columns.
        const PatchSource patches{src_q.mantissas.data(), patch_geometry(g)};
        ASSERT_EQ(patches.rows(), rows);
        ASSERT_EQ(patches.cols(), patch);
        bool same = true;
        // Narrow blocks cut taps apart; wide ones (37 columns, whole rows) join several whole
        // taps of a kernel row into one run, some of them in the padding.
        for (const std::int64_t width : {std::int64_t{13}, std::int64_t{37}, patch})
            for (std::int64_t r0 = 0; r0 < rows; r0 += 7)
                for (std::int64_t c0 = 0; c0 < patch; c0 += width == 13 ? 5 : width) {
                    const std::int64_t nr = std::min<std::int64_t>(11, rows - r0);
                    const std::int64_t nc = std::min<std::int64_t>(width, patch - c0);
                    const std::int64_t ld = nc + r0 % 3;
                    std::vector<std::int16_t> block(std::size_t(nr * ld), 12345);
                    PatchSource<std::int16_t>::fill(&patches, r0, nr, c0, nc, block.data(), ld);
                    for (std::int64_t r = 0; r < nr; ++r)
                        for (std::int64_t c = 0; c < ld; ++c)
                            same &= block[r * ld + c] ==
                                    (c < nc ? col.mantissas[(r0 + r) * patch + c0 + c] : 12345);
                }
        EXPECT_TRUE(same) << "PatchSource " << t.what;
        // Its region (the prefetch hint) covers all it reads: a source that differs outside the
        // region fills the same bits.
        bool covered = true;
        for (std::int64_t r0 = 0; r0 < rows; r0 += 9) {
            const std::int64_t nr = std::min<std::int64_t>(rows - r0, 1 + r0 % 23);
            const auto [begin, bytes] = PatchSource<std::int16_t>::region(&patches, r0, nr);
            const auto* base = reinterpret_cast<const char*>(src_q.mantissas.data());
            ASSERT_GE(begin, base);
            ASSERT_LE(begin + bytes, base + src_q.mantissas.size() * sizeof(std::int16_t));
            std::vector<std::int16_t> outside(src_q.mantissas.size(), 7777);
            std::memcpy(reinterpret_cast<char*>(outside.data()) + (begin - base), begin,
                        std::size_t(bytes));
            const PatchSource masked{outside.data(), patch_geometry(g)};
            std::vector<std::int16_t> block(std::size_t(nr * patch));
            PatchSource<std::int16_t>::fill(&masked, r0, nr, 0, patch, block.data(), patch);
            covered &= std::equal(block.begin(), block.end(), col.mantissas.begin() + r0 * patch);
        }
        EXPECT_TRUE(covered) << "PatchSource::region " << t.what;

        const std::vector<float> diff_dst = integers(dst.size());
        std::vector<float> diff_col(std::size_t(rows * patch));
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t k = 0; k < g.k; ++k)
                for (std::int64_t j = 0; j < patch; ++j)
                    diff_col[i * patch + j] += diff_dst[i * g.k + k] * wei[k * patch + j];
        const std::vector<float> diff_src_start = integers(src.size());
        std::vector<float> diff_src = diff_src_start, ref_diff_src = diff_src_start;
        col2im_add(diff_src.data(), diff_col.data(), g);
        conv2d_backward_data_ref(ref_diff_src.data(), diff_dst.data(), wei.data(), g);
        EXPECT_EQ(diff_src, ref_diff_src) << "col2im_add " << t.what;
        // BPROP as stride^2 stride-1 convolutions of diff_dst, one per phase of the input pixels,
        // each with its taps of the weights, scattered onto the pixels: the same sums as the
        // reference, added to diff_src or written over garbage.
        const Dfp16Tensor dd_q = quantize<std::int16_t>(
            diff_dst.data(), {std::size_t(rows), std::size_t(g.k)}, six_bits, {}, "dd");
        const Dfp16Tensor wei_q = quantize<std::int16_t>(
            wei.data(), {std::size_t(g.k), std::size_t(patch)}, six_bits, {}, "wei");
        std::vector<float> phases;
        std::int64_t taps = 0;
        for (std::int64_t ph = 0; ph < g.stride; ++ph)
            for (std::int64_t pw = 0; pw < g.stride; ++pw) {
                const BpropPhase phase = bprop_phase(g, ph, pw);
                ASSERT_EQ(phase.ph, ph);
                if (phase.empty()) continue;
                taps += phase.patches.kh * phase.patches.kw;
                Dfp16Tensor dd_col, pw_q;
                im2col(dd_q, phase.patches, dd_col);
                phase_weights(wei_q, g, phase, pw_q);
                const std::int64_t prows = g.n * phase.patches.oh * phase.patches.ow;
                const std::int64_t pk = phase.patches.kh * phase.patches.kw * g.k;
                ASSERT_EQ(pw_q.shape, (Shape{std::size_t(pk), std::size_t(g.c)}));
                for (std::int64_t i = 0; i < prows; ++i)
                    for (std::int64_t c = 0; c < g.c; ++c) {
                        float sum = 0;
                        for (std::int64_t j = 0; j < pk; ++j)
                            sum += float(dd_col.mantissas[i * pk + j]) *
                                   float(pw_q.mantissas[j * g.c + c]);
                        phases.push_back(sum);
                    }
            }
        // Every kernel tap serves exactly one phase (all have pixels here): the phases multiply
        // no more than the convolution.
        EXPECT_EQ(taps, g.kernel * g.kernel) << t.what;
        std::vector<float> phase_diff_src = diff_src_start;
        scatter_phases(phase_diff_src.data(), phases.data(), g, true);
        const bool phases_ok = phase_diff_src == ref_diff_src;
        EXPECT_TRUE(phases_ok) << "BPROP phases " << t.what;
        std::vector<float> fresh(diff_src_start.size(), 1e30f), ref_fresh(fresh.size(), 0.0f);
        scatter_phases(fresh.data(), phases.data(), g, false);
        conv2d_backward_data_ref(ref_fresh.data(), diff_dst.data(), wei.data(), g);
        EXPECT_EQ(fresh, ref_fresh) << "BPROP phases, written " << t.what;
        std::printf("lowering %-34s im2col %s PatchSource %s col2im_add %s bprop-phases %s\n",
                    t.what, dst == ref_dst ? "PASS" : "FAIL", same ? "PASS" : "FAIL",
                    diff_src == ref_diff_src ? "PASS" : "FAIL", phases_ok ? "PASS" : "FAIL");
    }
}

// conv1 -> relu -> conv2 -> conv3 (1x1) -> fc
void build_small_net(Net& net) {
    int x =
        net.add<Conv2d>({Net::kInput}, "conv1",
                        Conv2dConfig{.in_channels = 3, .out_channels = 4, .kernel = 3, .pad = 1});
    x = net.add<Relu>({x}, "relu1");
    x = net.add<Conv2d>({x}, "conv2",
                        Conv2dConfig{.in_channels = 4, .out_channels = 4, .kernel = 3, .pad = 1});
    x = net.add<Conv2d>({x}, "conv3", Conv2dConfig{.in_channels = 4, .out_channels = 2});
    net.add<Linear>({x}, "fc", LinearConfig{.in_features = 5 * 5 * 2, .out_features = 3});
}

// Convolutions on one input (an inception module's 1x1s): the first quantizes it for every later
// one with the same precision and activation format (Conv2d::add_input_sibling). Stochastic
// rounding keys its stream by the quantizing layer's name, so a sibling that reuses the first
// one's src computes exactly what a lone convolution named like the first computes, FPROP and
// WTGRAD; a sibling in another format, or after the first turned FP32, quantizes its own.
TEST(Dfp16Conv2d, SiblingsOnOneInputQuantizeItOnce) {
    const char* stochastic = "dfp16,activations.rounding=stochastic";
    const char* shifted = "dfp16,activations.rounding=stochastic,activations.shift=2";
    const auto config = [](std::int64_t k, std::int64_t kernel, const char* spec) {
        return Conv2dConfig{.in_channels = 5,
                            .out_channels = k,
                            .kernel = kernel,
                            .pad = kernel / 2,
                            .precision = dfp16_precision(spec)};
    };
    const std::int64_t ks[] = {4, 6, 3};
    Net net;
    const int a = net.add<Conv2d>({Net::kInput}, "a", config(ks[0], 3, stochastic));
    const int b = net.add<Conv2d>({Net::kInput}, "b", config(ks[1], 1, stochastic));
    const int c = net.add<Conv2d>({Net::kInput}, "c", config(ks[2], 3, shifted));
    net.add<Concat>({a, b, c}, "cat");
    for (const int node : {a, b, c})
        for (Param* p : net.layer(node).params())
            p->value = normal(p->value.size(), 30 + unsigned(node) + unsigned(p->value.size()));
    Tensor src({2, 7, 6, 5});
    src.data = aligned_copy<float>(normal(src.numel(), 40));
    Tensor diff({2, 7, 6, 13});
    diff.data = aligned_copy<float>(normal(diff.numel(), 41));

    // A lone convolution named `name` with node's configuration and weights: its dst and weight
    // gradient for that node's channels of diff.
    const auto alone = [&](int node, const char* name, std::int64_t channel0) {
        const auto& conv = static_cast<Conv2d&>(net.layer(node));
        Conv2d lone(name, conv.config());
        for (std::size_t i = 0; i < lone.params().size(); ++i) {
            lone.params()[i]->value = net.layer(node).params()[i]->value;
            lone.params()[i]->grad.assign(lone.params()[i]->grad.size(), 0.0f);
        }
        Tensor dst, dd({2, 7, 6, std::size_t(conv.config().out_channels)}), dsrc(src.shape);
        const Tensor* srcs[] = {&src};
        lone.forward(srcs, dst, {.iteration = 3});
        for (std::size_t p = 0; p < 2 * 7 * 6; ++p)
            for (std::int64_t k = 0; k < conv.config().out_channels; ++k)
                dd.data[p * std::size_t(conv.config().out_channels) + std::size_t(k)] =
                    diff.data[p * 13 + std::size_t(channel0 + k)];
        Tensor* dsrcs[] = {&dsrc};
        lone.backward(srcs, dst, dd, dsrcs);
        return std::make_pair(dst.data, lone.params()[0]->grad);
    };
    for (const bool first_fp32 : {false, true}) {
        if (first_fp32) net.layer(a).set_precision({});
        net.zero_grad();
        net.forward(src, {.iteration = 3});
        net.backward(diff);
        const auto got = [&](int node) {
            return std::make_pair(net.value(node).data, net.layer(node).params()[0]->grad);
        };
        // b: a's draw while a is DFP16, its own once a is FP32.
        EXPECT_EQ(got(b), alone(b, first_fp32 ? "b" : "a", ks[0])) << first_fp32;
        EXPECT_NE(got(b), alone(b, first_fp32 ? "a" : "b", ks[0])) << first_fp32;
        EXPECT_EQ(got(c), alone(c, "c", ks[0] + ks[1])) << first_fp32;
    }
}

// A train-mode batch-norm quantizes its output for the first DFP16 convolution that takes it whole
// (Layer::input_quantization), in its normalising pass. The network then computes exactly what
// the two layers compute on their own (the convolution quantizing its input), forward and
// backward, with stochastic rounding: on the first step (no exponent to guess: the convolution
// quantizes), when gamma jumps (the guess fails: likewise), and in eval mode (no fusion). A
// consumer that subsamples its input (a stride-2 1x1) quantizes patches, so it is passed over.
TEST(Dfp16Conv2d, BatchNormQuantizesItsOutputForTheConvolution) {
    const auto prec = dfp16_precision("dfp16,activations.rounding=stochastic");
    const BatchNormConfig bn_config{.channels = 5, .relu = true};
    const Conv2dConfig conv_config{
        .in_channels = 5, .out_channels = 4, .kernel = 3, .pad = 1, .precision = prec};
    Net net;
    const int bn = net.add<BatchNorm2d>({Net::kInput}, "bn", bn_config);
    net.add<Conv2d>({bn}, "down",
                    Conv2dConfig{.in_channels = 5,
                                 .out_channels = 3,
                                 .kernel = 1,
                                 .stride = 2,
                                 .precision = prec});
    const int conv = net.add<Conv2d>({bn}, "conv", conv_config);
    BatchNorm2d lone_bn("bn", bn_config);
    Conv2d lone_conv("conv", conv_config);
    for (Layer* layer : {&net.layer(bn), &net.layer(conv)})
        for (Param* p : layer->params())
            p->value = normal(p->value.size(), 50 + unsigned(p->value.size()));
    for (std::size_t i = 0; i < 2; ++i) {
        lone_bn.params()[i]->value = net.layer(bn).params()[i]->value;
        lone_conv.params()[i]->value = net.layer(conv).params()[i]->value;
    }
    auto& fused_bn = static_cast<BatchNorm2d&>(net.layer(bn));
    Tensor src({2, 7, 6, 5});
    src.data = aligned_copy<float>(normal(src.numel(), 51));
    Tensor diff({2, 7, 6, 4});
    diff.data = aligned_copy<float>(normal(diff.numel(), 52));
    for (const std::uint64_t iteration : {1, 2, 3, 4}) {
        if (iteration == 3)  // the output's range grows 64-fold: last step's exponent is wrong
            for (BatchNorm2d* b : {&fused_bn, &lone_bn})
                for (float& g : b->gamma().value) g *= 64.0f;
        const Context ctx{Mode::train, iteration};
        net.zero_grad();
        net.forward(src, ctx);
        net.backward(diff);
        EXPECT_EQ(fused_bn.quantized_for_consumer(), iteration == 2 || iteration == 4) << iteration;
        Tensor y, z, dy(src.shape), dsrc(src.shape);
        for (Layer* layer : {static_cast<Layer*>(&lone_bn), static_cast<Layer*>(&lone_conv)})
            for (Param* p : layer->params()) p->grad.assign(p->grad.size(), 0.0f);
        const Tensor* bn_srcs[] = {&src};
        const Tensor* conv_srcs[] = {&y};
        Tensor* dys[] = {&dy};
        Tensor* dsrcs[] = {&dsrc};
        lone_bn.forward(bn_srcs, y, ctx);
        lone_conv.forward(conv_srcs, z, ctx);
        EXPECT_FALSE(lone_bn.quantized_for_consumer());
        EXPECT_EQ(net.value(conv).data, z.data) << iteration;
        lone_conv.backward(conv_srcs, z, diff, dys);
        lone_bn.backward(bn_srcs, y, dy, dsrcs);
        for (std::size_t i = 0; i < 2; ++i) {
            EXPECT_EQ(net.layer(conv).params()[i]->grad, lone_conv.params()[i]->grad) << iteration;
            EXPECT_EQ(net.layer(bn).params()[i]->grad, lone_bn.params()[i]->grad) << iteration;
        }
    }
    const Context eval{Mode::eval, 4};
    net.forward(src, eval);
    EXPECT_FALSE(fused_bn.quantized_for_consumer());
    Tensor y, z;
    const Tensor* bn_srcs[] = {&src};
    const Tensor* conv_srcs[] = {&y};
    lone_bn.forward(bn_srcs, y, eval);
    lone_conv.forward(conv_srcs, z, eval);
    EXPECT_EQ(net.value(conv).data, z.data);
}

// A train-mode batch-norm that writes the whole gradient of its input quantizes it, in its last
// backward pass, for the DFP16 convolution that produced that input and has no other consumer
// (Layer::output_gradient_quantization). The network then computes exactly what the layers compute
// on their own, with stochastic rounding of the gradients: on the first step (no exponent to
// guess), when the gradient's range jumps (the guess fails), with a fused residual join, and not
// at all when the convolution has a second consumer or a fused ReLU (whose mask its own
// quantization applies). A convolution without a bias reads only the quantized gradient: the
// batch-norm then does not write the FP32 one, except when the guess fails.
TEST(Dfp16Conv2d, BatchNormQuantizesTheGradientOfItsInputForTheConvolution) {
    const auto prec = dfp16_precision("dfp16,gradients.rounding=stochastic");
    enum class Case { plain, residual, plain_unbiased, residual_unbiased, second_consumer, relu };
    for (const Case kase : {Case::plain, Case::residual, Case::plain_unbiased,
                            Case::residual_unbiased, Case::second_consumer, Case::relu}) {
        const bool residual = kase == Case::residual || kase == Case::residual_unbiased;
        const bool unbiased = kase == Case::plain_unbiased || kase == Case::residual_unbiased;
        const BatchNormConfig bn_config{.channels = 4, .relu = true, .residual = residual};
        const Conv2dConfig conv_config{.in_channels = 4,
                                       .out_channels = 4,
                                       .kernel = 3,
                                       .pad = 1,
                                       .bias = !unbiased,
                                       .relu = kase == Case::relu,
                                       .precision = prec};
        Net net;
        const int conv = net.add<Conv2d>({Net::kInput}, "conv", conv_config);
        if (kase == Case::second_consumer) net.add<Relu>({conv}, "relu");  // a dead branch
        const int bn = net.add<BatchNorm2d>(
            residual ? std::vector<int>{conv, Net::kInput} : std::vector<int>{conv}, "bn",
            bn_config);
        Conv2d lone_conv("conv", conv_config);
        BatchNorm2d lone_bn("bn", bn_config);
        for (Layer* layer : {&net.layer(conv), &net.layer(bn)})
            for (Param* p : layer->params())
                p->value = normal(p->value.size(), 60 + unsigned(p->value.size()));
        for (std::size_t i = 0; i < lone_conv.params().size(); ++i)
            lone_conv.params()[i]->value = net.layer(conv).params()[i]->value;
        for (std::size_t i = 0; i < 2; ++i)
            lone_bn.params()[i]->value = net.layer(bn).params()[i]->value;
        const auto& fused_bn = static_cast<const BatchNorm2d&>(net.layer(bn));
        // 16384 rows: 16 parts of the batch-norm's pass (1024 rows each at 4 channels), 65536
        // values: enough for the pass to run on every thread (kMinParallelElements).
        Tensor src({4, 64, 64, 4});
        src.data = aligned_copy<float>(normal(src.numel(), 61));
        Tensor diff(src.shape);
        diff.data = aligned_copy<float>(normal(diff.numel(), 62));
        for (const std::uint64_t iteration : {1, 2, 3, 4}) {
            if (iteration == 3)  // the gradient's range grows 64-fold: last step's exponent fails
                for (float& d : diff.data) d *= 64.0f;
            // Slightly new values where the exponent holds: a stale FP32 gradient would show.
            if (iteration % 2 == 0)
                for (float& d : diff.data) d *= 1.001f;
            const Context ctx{Mode::train, iteration};
            net.zero_grad();
            net.forward(src, ctx);
            net.backward(diff);
            const bool fused = kase != Case::second_consumer && kase != Case::relu;
            EXPECT_EQ(fused_bn.quantized_for_producer(),
                      fused && (iteration == 2 || iteration == 4))
                << int(kase) << " " << iteration;
            Tensor y, z, dy;
            for (Layer* layer : {static_cast<Layer*>(&lone_conv), static_cast<Layer*>(&lone_bn)})
                for (Param* p : layer->params()) p->grad.assign(p->grad.size(), 0.0f);
            const Tensor* conv_srcs[] = {&src};
            const Tensor* bn_srcs[] = {&y, &src};
            const std::span<const Tensor* const> bn_inputs(bn_srcs, residual ? 2 : 1);
            lone_conv.forward(conv_srcs, y, ctx);
            lone_bn.forward(bn_inputs, z, ctx);
            EXPECT_EQ(net.value(bn).data, z.data) << int(kase) << " " << iteration;
            dy.resize(y.shape);
            std::fill(dy.data.begin(), dy.data.end(), 0.0f);
            Tensor* bn_diffs[] = {&dy, nullptr};
            Tensor* conv_diffs[] = {nullptr};
            lone_bn.backward(bn_inputs, z, diff,
                             std::span<Tensor* const>(bn_diffs, bn_inputs.size()));
            lone_conv.backward(conv_srcs, y, dy, conv_diffs);
            for (std::size_t i = 0; i < lone_conv.params().size(); ++i)
                EXPECT_EQ(net.layer(conv).params()[i]->grad, lone_conv.params()[i]->grad)
                    << int(kase) << " " << iteration;
            for (std::size_t i = 0; i < 2; ++i)
                EXPECT_EQ(net.layer(bn).params()[i]->grad, lone_bn.params()[i]->grad)
                    << int(kase) << " " << iteration;
        }
    }
}

// A DFP16 convolution hands the batch-norm after it the moments of its output block by block as
// its GEMM finishes the rows (Layer::input_moments), which spares the batch-norm a read of the
// tensor: the batch-norm's output and running statistics have the bits of one that computes the
// moments itself, on 1, 2 and 3 threads, with the last block of rows cut short (3x37x41 pixels),
// a mean far from zero, and in a residual join. After an FP32 convolution, and in eval mode, the
// batch-norm computes them itself.
TEST(Dfp16Conv2d, GivesTheBatchNormAfterItTheMomentsOfItsOutput) {
    const int max_threads = omp_get_max_threads();
    for (const bool dfp : {true, false})
        for (const bool residual : {false, true})
            for (int threads = 1; threads <= 3; ++threads) {
                omp_set_num_threads(threads);
                const std::string what = std::string(dfp ? "dfp16" : "fp32") +
                                         (residual ? " residual" : "") + " threads " +
                                         std::to_string(threads);
                const Conv2dConfig conv_config{.in_channels = 5,
                                               .out_channels = 7,
                                               .kernel = 3,
                                               .pad = 1,
                                               .bias = true,
                                               .precision = dfp ? dfp16_precision()
                                                                : precision::LayerPrecision{}};
                const BatchNormConfig bn_config{.channels = 7, .relu = true, .residual = residual};
                Net net;
                const int conv = net.add<Conv2d>({Net::kInput}, "conv", conv_config);
                const int skip = net.add<Conv2d>({Net::kInput}, "skip", conv_config);
                const int bn = net.add<BatchNorm2d>(
                    residual ? std::vector<int>{conv, skip} : std::vector<int>{conv}, "bn",
                    bn_config);
                for (int layer : {conv, skip, bn})
                    for (Param* p : net.layer(layer).params())
                        p->value = normal(p->value.size(), 70 + unsigned(p->value.size()));
                net.layer(conv).params()[1]->value.assign(7, 300.0f);  // a far mean
                Tensor src({3, 37, 41, 5});
                src.data = aligned_copy<float>(normal(src.numel(), 71));
                BatchNorm2d lone_bn("bn", bn_config);
                for (std::size_t i = 0; i < 2; ++i)
                    lone_bn.params()[i]->value = net.layer(bn).params()[i]->value;
                auto& fused_bn = static_cast<BatchNorm2d&>(net.layer(bn));
                for (const Mode mode : {Mode::train, Mode::train, Mode::eval}) {
                    const Context ctx{mode, 1};
                    net.forward(src, ctx);
                    EXPECT_EQ(fused_bn.moments_from_input(), dfp && mode == Mode::train) << what;
                    Tensor y = net.value(conv), r = net.value(skip), z;
                    const Tensor* bn_srcs[] = {&y, &r};
                    lone_bn.forward(std::span<const Tensor* const>(bn_srcs, residual ? 2 : 1), z,
                                    ctx);
                    EXPECT_FALSE(lone_bn.moments_from_input());
                    EXPECT_EQ(net.value(bn).data, z.data) << what;
                    EXPECT_EQ(fused_bn.running_mean(), lone_bn.running_mean()) << what;
                    EXPECT_EQ(fused_bn.running_var(), lone_bn.running_var()) << what;
                }
            }
    omp_set_num_threads(max_threads);
}

// Passes its input through; its forward throws while `armed`.
class Tripwire : public Layer {
  public:
    explicit Tripwire(std::string name) : Layer(std::move(name)) {}
    const char* kind() const override { return "tripwire"; }
    void forward(Srcs src, Tensor& dst, const Context&) override {
        if (armed) throw Error("tripwire");
        dst = *src[0];
    }
    void backward(Srcs, const Tensor&, const Tensor& diff_dst, DiffSrcs diff_src) override {
        for (std::size_t e = 0; e < diff_dst.numel(); ++e) diff_src[0]->data[e] += diff_dst.data[e];
    }
    bool armed = false;
};

// A pass that fails after the batch-norm quantized a tensor for a convolution, before that
// convolution ran, leaves nothing the next pass could take for its own: an eval-mode forward (no
// fusion) at the same iteration, and a backward after it, compute what the layers compute without
// the fusion.
TEST(Dfp16Conv2d, AFailedPassLeavesNoQuantizedTensorForTheNext) {
    const auto prec = dfp16_precision("dfp16,gradients.rounding=stochastic");
    const Conv2dConfig conv_config{
        .in_channels = 4, .out_channels = 4, .kernel = 3, .pad = 1, .precision = prec};
    const BatchNormConfig bn_config{.channels = 4, .relu = true};
    Tensor src({2, 30, 30, 4});
    src.data = aligned_copy<float>(normal(src.numel(), 81));
    Tensor diff(src.shape), diff2(src.shape);
    diff.data = aligned_copy<float>(normal(diff.numel(), 82));
    diff2.data = aligned_copy<float>(normal(diff.numel(), 83));
    const auto set_params = [](Layer& layer) {
        for (Param* p : layer.params())
            p->value = normal(p->value.size(), 80 + unsigned(p->value.size()));
    };
    {  // Forward: bn -> trip -> conv; the tripwire stops the pass after bn quantized for conv.
        Net net;
        const int bn = net.add<BatchNorm2d>({Net::kInput}, "bn", bn_config);
        const int trip = net.add<Tripwire>({bn}, "trip");
        const int conv = net.add<Conv2d>({bn}, "conv", conv_config);
        Conv2d lone("conv", conv_config);
        set_params(net.layer(conv));
        set_params(lone);
        for (const std::uint64_t iteration : {0, 1}) {  // an exponent to guess from
            net.forward(src, {Mode::train, iteration});
            net.backward(diff);
        }
        auto& tripwire = static_cast<Tripwire&>(net.layer(trip));
        tripwire.armed = true;
        EXPECT_THROW(net.forward(src, {Mode::train, 2}), Error);
        EXPECT_TRUE(static_cast<const BatchNorm2d&>(net.layer(bn)).quantized_for_consumer());
        tripwire.armed = false;
        net.forward(src, {Mode::eval, 2});
        Tensor z;
        const Tensor* srcs[] = {&net.value(bn)};
        lone.forward(srcs, z, {Mode::eval, 2});
        EXPECT_EQ(net.value(conv).data, z.data);
    }
    // Backward: conv -> bn, a hook stops the pass after bn quantized the gradient for conv. The
    // reference's conv has a second consumer (a dead branch), so nothing is quantized for it.
    std::vector<float> grads[2];
    for (const bool fused : {true, false}) {
        Net net;
        const int conv = net.add<Conv2d>({Net::kInput}, "conv", conv_config);
        if (!fused) net.add<Relu>({conv}, "dead");
        const int bn = net.add<BatchNorm2d>({conv}, "bn", bn_config);
        set_params(net.layer(conv));
        for (const std::uint64_t iteration : {0, 1}) {
            net.forward(src, {Mode::train, iteration});
            net.backward(diff);
        }
        net.forward(src, {Mode::train, 2});
        EXPECT_THROW(net.backward(diff,
                                  [](Layer& layer) {
                                      if (layer.name() == "bn") throw Error("hook");
                                  }),
                     Error);
        EXPECT_EQ(static_cast<const BatchNorm2d&>(net.layer(bn)).quantized_for_producer(), fused);
        net.forward(src, {Mode::eval, 2});
        net.zero_grad();
        net.backward(diff2);
        grads[fused] = net.layer(conv).params()[0]->grad;
    }
    EXPECT_EQ(grads[0], grads[1]);
}

TEST(Dfp16Policy, PaperPolicyKeepsFirstAndLastLayerFp32) {
    Net net;
    build_small_net(net);
    net.apply_precision(precision::Policy::dfp16());
    EXPECT_EQ(net.precision_summary(), "conv1 fp32\nconv2 dfp16\nconv3 dfp16\nfc fp32\n");
    EXPECT_EQ(net.layer(2).precision(), nullptr);  // relu1: always FP32
    EXPECT_EQ(net.layer(3).precision()->compute, precision::Compute::dfp16);
    EXPECT_EQ(net.layer(3).precision()->gradients.format.bits, 16);
    net.apply_precision(precision::Policy::parse("dfp16,fc=dfp16,conv3=fp32"));
    EXPECT_EQ(net.precision_summary(), "conv1 fp32\nconv2 dfp16\nconv3 fp32\nfc dfp16\n");
    net.apply_precision(precision::Policy::fp32());
    EXPECT_EQ(net.precision_summary(), "conv1 fp32\nconv2 fp32\nconv3 fp32\nfc fp32\n");
}

TEST(Dfp16Policy, NanEnteringADfp16LayerIsAnErrorNamingTheTensor) {
    Net net;
    build_small_net(net);
    net.apply_precision(precision::Policy::dfp16());
    Tensor src({2, 5, 5, 3});
    src.data = aligned_copy<float>(normal(src.numel(), 9));
    net.forward(src, {});
    // conv1 (FP32) passes the NaN on through relu1; conv2 (DFP16) meets it when quantizing.
    src.data[40] = std::numeric_limits<float>::quiet_NaN();
    try {
        net.forward(src, {});
        FAIL() << "no error for a NaN entering conv2";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("tensor 'conv2.src'"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace dfp::nn
