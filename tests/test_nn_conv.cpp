// The oneDNN FP32 Conv2d (forward, backward data, backward weights) against the naive reference
// in nn/reference.cpp on random data, and Linear's forward against its reference. Tolerance:
// |onednn - ref| <= 1e-5 * max|ref| per tensor (FP32 sums of at most a few hundred terms of
// magnitude <= 1 in oneDNN's order vs double in the reference; relative error ~1e-6). Each case
// also requires most reference outputs to be non-zero, so an all-zero result cannot pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/reference.hpp"

namespace dfp::nn {
namespace {

constexpr double kRelTol = 1e-5;

std::vector<float> uniform(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// max |a - ref| / max |ref|, after checking that at least half of ref is non-zero.
double relative_error(std::span<const float> a, std::span<const float> ref) {
    EXPECT_EQ(a.size(), ref.size());
    const auto nonzero = std::count_if(ref.begin(), ref.end(), [](float x) { return x != 0.0f; });
    EXPECT_GE(2 * nonzero, static_cast<long>(ref.size())) << "reference mostly zero";
    double max_diff = 0.0, max_ref = 0.0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        max_diff = std::max(max_diff, std::abs(double(a[i]) - ref[i]));
        max_ref = std::max(max_ref, std::abs(double(ref[i])));
    }
    return max_diff / max_ref;
}

struct ConvCase {
    std::int64_t n, h, w, c, k, kernel, stride, pad;
    bool bias;
};

class NnConv2dVsReference : public ::testing::TestWithParam<ConvCase> {};

TEST_P(NnConv2dVsReference, ForwardBackwardDataBackwardWeights) {
    const ConvCase t = GetParam();
    Conv2d conv("conv", {.in_channels = t.c,
                         .out_channels = t.k,
                         .kernel = t.kernel,
                         .stride = t.stride,
                         .pad = t.pad,
                         .bias = t.bias});
    if (t.bias) conv.bias()->value = uniform(std::size_t(t.k), 1);
    Tensor src({std::size_t(t.n), std::size_t(t.h), std::size_t(t.w), std::size_t(t.c)});
    src.data = aligned_copy<float>(uniform(src.numel(), 2));
    const Tensor* srcs[] = {&src};
    Tensor dst;
    conv.forward(srcs, dst, {});
    const ConvGeometry g = conv.geometry(src.shape);
    ASSERT_EQ(dst.shape,
              (Shape{std::size_t(g.n), std::size_t(g.oh), std::size_t(g.ow), std::size_t(g.k)}));

    std::vector<float> ref_dst(dst.numel());
    const float* bias = t.bias ? conv.bias()->value.data() : nullptr;
    conv2d_forward_ref(ref_dst.data(), src.data.data(), conv.weight().value.data(), bias, g);

    // Gradient buffers start at the same non-zero values in both, since both add.
    Tensor diff_dst(dst.shape);
    diff_dst.data = aligned_copy<float>(uniform(diff_dst.numel(), 3));
    Tensor diff_src(src.shape);
    diff_src.data = aligned_copy<float>(uniform(diff_src.numel(), 4));
    std::vector<float> ref_diff_src(diff_src.data.begin(), diff_src.data.end());
    conv.weight().grad = uniform(conv.weight().grad.size(), 5);
    std::vector<float> ref_diff_wei = conv.weight().grad;
    std::vector<float> ref_diff_bias;
    if (t.bias) ref_diff_bias = conv.bias()->grad = uniform(std::size_t(t.k), 6);
    Tensor* diff_srcs[] = {&diff_src};
    conv.backward(srcs, dst, diff_dst, diff_srcs);
    conv2d_backward_data_ref(ref_diff_src.data(), diff_dst.data.data(), conv.weight().value.data(),
                             g);
    conv2d_backward_weights_ref(ref_diff_wei.data(), t.bias ? ref_diff_bias.data() : nullptr,
                                src.data.data(), diff_dst.data.data(), g);

    const double e_fwd = relative_error(dst.data, ref_dst);
    const double e_data = relative_error(diff_src.data, ref_diff_src);
    const double e_wei = relative_error(conv.weight().grad, ref_diff_wei);
    const double e_bias = t.bias ? relative_error(conv.bias()->grad, ref_diff_bias) : 0.0;
    const bool pass = std::max({e_fwd, e_data, e_wei, e_bias}) <= kRelTol;
    std::printf(
        "conv2d f32 onednn n=%ld %ldx%ldx%ld->%ld k%ld s%ld p%ld %s  fwd %.1e bwd_d %.1e "
        "bwd_w %.1e bias %.1e  %s\n",
        long(t.n), long(t.h), long(t.w), long(t.c), long(t.k), long(t.kernel), long(t.stride),
        long(t.pad), t.bias ? "bias" : "nobias", e_fwd, e_data, e_wei, e_bias,
        pass ? "PASS" : "FAIL");
    EXPECT_LE(e_fwd, kRelTol);
    EXPECT_LE(e_data, kRelTol);
    EXPECT_LE(e_wei, kRelTol);
    EXPECT_LE(e_bias, kRelTol);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, NnConv2dVsReference,
    ::testing::Values(ConvCase{2, 8, 8, 16, 32, 1, 1, 0, true},   // 1x1 as a plain GEMM
                      ConvCase{2, 9, 7, 16, 8, 1, 2, 0, false},   // 1x1 stride 2 (ResNet down)
                      ConvCase{2, 9, 9, 8, 16, 3, 1, 1, true},    // 3x3 same
                      ConvCase{3, 9, 7, 5, 6, 3, 2, 1, true},     // 3x3 stride 2, odd, non-square
                      ConvCase{1, 15, 13, 3, 8, 7, 2, 3, false},  // the 7x7 stem
                      ConvCase{2, 6, 5, 3, 4, 5, 1, 2, true}));   // 5x5 (GoogLeNet)

TEST(NnConv2d, ReusesPlansAcrossBatchSizes) {
    Conv2d conv("conv", {.in_channels = 3, .out_channels = 4, .kernel = 3, .pad = 1});
    for (std::size_t n : {2u, 1u, 2u}) {
        Tensor src({n, 5, 5, 3});
        src.data = aligned_copy<float>(uniform(src.numel(), unsigned(n)));
        const Tensor* srcs[] = {&src};
        Tensor dst;
        conv.forward(srcs, dst, {});
        std::vector<float> ref(dst.numel());
        conv2d_forward_ref(ref.data(), src.data.data(), conv.weight().value.data(),
                           conv.bias()->value.data(), conv.geometry(src.shape));
        EXPECT_LE(relative_error(dst.data, ref), kRelTol) << "batch " << n;
    }
}

TEST(NnConv2d, BadShapesAreErrorsNamingTheLayer) {
    Conv2d conv("conv7", {.in_channels = 3, .out_channels = 4, .kernel = 5});
    Tensor dst;
    for (const Shape& shape : {Shape{1, 8, 8, 4}, Shape{8, 8, 3}, Shape{1, 4, 8, 3}}) {
        Tensor src(shape);
        const Tensor* srcs[] = {&src};
        try {
            conv.forward(srcs, dst, {});
            ADD_FAILURE() << "no error for " << shape_string(shape);
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("conv2d 'conv7'"), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(Conv2d("bad", {.in_channels = 3, .out_channels = 0}), Error);
}

TEST(NnLinear, ForwardMatchesReference) {
    Linear fc("fc", {.in_features = 37, .out_features = 11});
    fc.bias()->value = uniform(11, 7);
    Tensor src({5, 37});
    src.data = aligned_copy<float>(uniform(src.numel(), 8));
    const Tensor* srcs[] = {&src};
    Tensor dst;
    fc.forward(srcs, dst, {});
    std::vector<float> ref(5 * 11);
    linear_forward_ref(ref.data(), src.data.data(), fc.weight().value.data(),
                       fc.bias()->value.data(), 5, 37, 11);
    EXPECT_LE(relative_error(dst.data, ref), kRelTol);
    Tensor wrong({5, 36});
    const Tensor* wrong_srcs[] = {&wrong};
    EXPECT_THROW(fc.forward(wrong_srcs, dst, {}), Error);
}

}  // namespace
}  // namespace dfp::nn
