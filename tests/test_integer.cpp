// NITI's integer-only engine (src/integer/): narrowing and pseudo-stochastic rounding against a
// scalar reference written from PAPERS.md's text, the integer cross-entropy gradient against its
// formula in double, the update, the integer layers against the FP32 layers, and an integer
// LeNet learning a small training set.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "data/classification.hpp"
#include "integer/boundary.hpp"
#include "integer/loss.hpp"
#include "integer/narrow.hpp"
#include "integer/net.hpp"
#include "kernels/gemm.hpp"
#include "models/registry.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/pool.hpp"

namespace dfp {
namespace {

using integer::Int8Tensor;

// ---- references, from PAPERS.md section 2 ----

int reference_bit_length(std::int64_t v) {
    std::uint64_t m = static_cast<std::uint64_t>(v < 0 ? -v : v);
    int b = 0;
    while (m != 0) m >>= 1, ++b;
    return b;
}

// |v| >> k: up iff hi (top ceil(k/2) discarded bits) > lo (low floor(k/2) bits, doubled for odd k).
std::int64_t reference_pseudo_shift(std::int64_t v, int k) {
    const std::int64_t mag = v < 0 ? -v : v;
    if (k == 0) return v;
    const std::int64_t rem = mag % (std::int64_t{1} << k);
    const int lo_bits = k / 2;
    const std::int64_t hi = rem / (std::int64_t{1} << lo_bits);
    std::int64_t lo = rem % (std::int64_t{1} << lo_bits);
    if (k % 2 == 1) lo *= 2;
    const std::int64_t r = mag / (std::int64_t{1} << k) + (hi > lo ? 1 : 0);
    return v < 0 ? -r : r;
}

Int8Tensor random_int8(const Shape& shape, int exponent, std::uint32_t seed, int max = 127) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> dist(-max, max);
    Int8Tensor t;
    t.resize(shape);
    t.exponent = exponent;
    for (auto& v : t.data) v = static_cast<std::int8_t>(dist(gen));
    return t;
}

std::vector<float> values(const Int8Tensor& t) {
    const nn::Tensor x = integer::dequantize(t);
    return {x.data.begin(), x.data.end()};
}

// ---- narrowing ----

TEST(IntegerNarrow, MatchesTheReferenceForEveryBitLength) {
    std::mt19937 gen(7);
    for (int b = 0; b <= 32; ++b) {
        // The largest magnitude has exactly b bits (b = 32: INT32_MIN); the rest lie below it,
        // with edge values: 0, +-1, +-127, +-128, and odd and even k.
        const std::int64_t top = b == 0 ? 0 : (std::int64_t{1} << (b - 1));
        std::vector<std::int32_t> src;
        if (b == 32) {
            src.push_back(std::numeric_limits<std::int32_t>::min());
        } else {
            const std::int64_t hi = b == 0 ? 0 : (std::int64_t{1} << b) - 1;
            src.push_back(static_cast<std::int32_t>(top));
            src.push_back(static_cast<std::int32_t>(-hi));
            std::uniform_int_distribution<std::int64_t> dist(-hi, hi);
            for (int i = 0; i < 300; ++i) src.push_back(static_cast<std::int32_t>(dist(gen)));
        }
        for (const std::int32_t v : {0, 1, -1, 127, -127, 128, -128})
            if (reference_bit_length(v) <= b) src.push_back(v);
        const int k = std::max(
            reference_bit_length(*std::max_element(
                src.begin(), src.end(),
                [](std::int64_t x, std::int64_t y) { return std::abs(x) < std::abs(y); })) -
                7,
            0);
        Int8Tensor dst;
        integer::narrow_to_int8(src.data(), {src.size()}, -3, dst);
        ASSERT_EQ(dst.exponent, -3 + k) << "b " << b;
        for (std::size_t i = 0; i < src.size(); ++i) {
            const std::int64_t want =
                std::clamp<std::int64_t>(reference_pseudo_shift(src[i], k), -127, 127);
            ASSERT_EQ(dst.data[i], want) << "b " << b << " k " << k << " value " << src[i];
        }
        std::printf("narrow b %2d k %2d %zu values PASS\n", b, k, src.size());
    }
}

TEST(IntegerNarrow, FastPathsEqualTheirScalarTwin) {
    // Every ISA this CPU runs, every bit length, awkward sizes (one element, tails under a mask,
    // the threaded chunks), the extremes INT32_MIN / INT32_MAX and +-127/128 in every case.
    for (const Isa isa : {Isa::scalar, Isa::avx512}) {
        if (isa > active_isa()) continue;
        std::mt19937 gen(3);
        for (const std::int64_t n : {1, 7, 33, 40000})
            for (int b = 0; b <= 32; ++b) {
                const std::int64_t hi = b == 0 ? 0 : (std::int64_t{1} << std::min(b, 31)) - 1;
                std::uniform_int_distribution<std::int64_t> dist(-hi, hi);
                std::vector<std::int32_t> src(static_cast<std::size_t>(n));
                for (auto& v : src) v = static_cast<std::int32_t>(dist(gen));
                const std::vector<std::int32_t> edges = {0,
                                                         127,
                                                         -127,
                                                         128,
                                                         -128,
                                                         std::numeric_limits<std::int32_t>::max(),
                                                         std::numeric_limits<std::int32_t>::min()};
                for (std::size_t e = 0; e < edges.size() && e < src.size(); ++e)
                    if (reference_bit_length(edges[e]) <= b) src[e] = edges[e];
                if (b == 32) src[0] = std::numeric_limits<std::int32_t>::min();
                std::vector<std::int8_t> fast(src.size()), ref(src.size());
                const int k = integer::narrow_int32(src.data(), n, fast.data(), isa);
                ASSERT_EQ(k, integer::narrow_int32_reference(src.data(), n, ref.data()));
                ASSERT_EQ(fast, ref) << isa_name(isa) << " n " << n << " b " << b;
            }
        std::printf("narrow_int32 %s == scalar twin, n 1, 7, 33, 40000, bit lengths 0..32 PASS\n",
                    isa_name(isa));
    }
}

TEST(IntegerNarrow, ByHand) {
    // k = 0 keeps values; k = 1 rounds half up in magnitude (hi = the bit, lo = 0).
    const std::vector<std::int32_t> a = {127, -127, 0, 5};
    Int8Tensor dst;
    integer::narrow_to_int8(a.data(), {4}, 2, dst);
    EXPECT_EQ(dst.exponent, 2);
    EXPECT_EQ(dst.data, (AlignedVector<std::int8_t>{127, -127, 0, 5}));
    const std::vector<std::int32_t> b = {255, -255, 3, -2, 1};
    integer::narrow_to_int8(b.data(), {5}, 0, dst);
    EXPECT_EQ(dst.exponent, 1);
    // 255 >> 1 = 127.5 -> 128, clamped back to 127; 3 -> 2; 2 -> 1; 1 -> 1.
    EXPECT_EQ(dst.data, (AlignedVector<std::int8_t>{127, -127, 2, -1, 1}));
    // k = 2 (b = 9, even k: lo not doubled): 258 has rem 0b10 (hi 1 > lo 0: up to 65); 257 rem
    // 0b01 (hi 0, lo 1: down); 259 rem 0b11 (hi 1 = lo 1: down).
    const std::vector<std::int32_t> c = {258, 257, 259, -256};
    integer::narrow_to_int8(c.data(), {4}, 0, dst);
    EXPECT_EQ(dst.exponent, 2);
    EXPECT_EQ(dst.data, (AlignedVector<std::int8_t>{65, 64, 64, -64}));
    EXPECT_EQ(integer::bit_length(0), 0);
    EXPECT_EQ(integer::bit_length(128), 8);  // NITI's ceil(log2 128) = 7 would wrap it
    EXPECT_EQ(integer::bit_length(-127), 7);
}

TEST(IntegerNarrow, PseudoStochasticIsNearlyUnbiasedForLargeK) {
    // Over all remainders of k = 10 bits the mean rounding error is under 2^-5 of a step.
    for (const int k : {9, 10}) {
        double sum = 0;
        const std::int64_t n = std::int64_t{1} << k;
        for (std::int64_t v = 0; v < n; ++v)
            sum += static_cast<double>(integer::shift_pseudo_stochastic(n * 3 + v, k)) -
                   (3.0 + static_cast<double>(v) / static_cast<double>(n));
        EXPECT_LT(std::abs(sum / static_cast<double>(n)), std::ldexp(1.0, -(k + 1) / 2)) << k;
    }
}

// ---- loss gradient ----

// p - y in double from NITI's formula (loss.hpp): the values the integer gradient rounds.
std::vector<double> reference_gradient(const Int8Tensor& logits, const std::vector<int>& labels) {
    const std::size_t k = logits.numel() / labels.size();
    std::vector<double> out(logits.numel());
    for (std::size_t n = 0; n < labels.size(); ++n) {
        const std::int8_t* a = logits.data.data() + n * k;
        std::vector<double> u(k);
        for (std::size_t i = 0; i < k; ++i) {
            if (logits.exponent <= -7) {
                const double z = std::ldexp(a[i], std::max(logits.exponent, -40));
                u[i] = 1 + z + z * z / 2;
            } else {
                const double t = std::floor((a[i] - *std::max_element(a, a + k)) *
                                            std::ldexp(47274.0, logits.exponent - 15)) +
                                 10;
                u[i] = t < 0 ? 0 : std::ldexp(1.0, static_cast<int>(t)) - 1;
            }
        }
        double sum = 0;
        for (const double v : u) sum += v;
        for (std::size_t i = 0; i < k; ++i)
            out[n * k + i] = u[i] / sum - (static_cast<int>(i) == labels[n] ? 1.0 : 0.0);
    }
    return out;
}

TEST(IntegerLoss, GradientMatchesItsFormulaAndTheSoftmax) {
    const std::vector<int> labels = {0, 3, 9, 5, 5, 1, 7, 2};
    for (const int exponent : {-12, -8, -7, -6, -4, -2, 0, 3}) {
        const Int8Tensor logits = random_int8({8, 10}, exponent, 11 + exponent);
        Int8Tensor diff;
        integer::cross_entropy_gradient(logits, labels, 5, diff);
        ASSERT_EQ(diff.exponent, -7);
        const std::vector<double> want = reference_gradient(logits, labels);
        // The integer P truncates to 2^-11 and the stochastic 4-bit shift moves by under one
        // output step of 2^-7.
        const double bound = std::ldexp(1.0, -7) + std::ldexp(1.0, -11);
        double worst = 0;
        for (std::size_t i = 0; i < want.size(); ++i)
            worst = std::max(worst, std::abs(std::ldexp(diff.data[i], -7) - want[i]));
        EXPECT_LE(worst, bound) << "exponent " << exponent;
        // Against the true softmax: the gradient's sign is right wherever the reference's is
        // clear of the rounding, and the target's entry is never positive.
        for (std::size_t n = 0; n < labels.size(); ++n) EXPECT_LE(diff.data[n * 10 + labels[n]], 0);
        std::printf("integer CE gradient exponent %3d worst %.5f bound %.5f PASS\n", exponent,
                    worst, bound);
    }
}

TEST(IntegerLoss, StochasticShiftIsUnbiasedOverSeeds) {
    // Uniform logits: p = 1/10, so the non-target entries are 2^11/10 = 204.8 -> 12.8 steps.
    Int8Tensor logits;
    logits.resize({1, 10});
    logits.exponent = -3;
    double sum = 0;
    constexpr int kSeeds = 2000;
    Int8Tensor diff;
    for (int s = 0; s < kSeeds; ++s) {
        integer::cross_entropy_gradient(logits, std::vector<int>{0}, s, diff);
        sum += diff.data[1];
    }
    EXPECT_NEAR(sum / kSeeds, 204.0 / 16, 0.1);  // floor(1023 * 2048 / 10230) = 204
}

TEST(IntegerLoss, ErrorsNameTheProblem) {
    Int8Tensor logits;
    logits.resize({2, 10});
    Int8Tensor diff;
    EXPECT_THROW(integer::cross_entropy_gradient(logits, std::vector<int>{0}, 0, diff), Error);
    EXPECT_THROW(integer::cross_entropy_gradient(logits, std::vector<int>{0, 10}, 0, diff), Error);
}

// ---- update ----

TEST(IntegerUpdate, NarrowsToMuBitsAndClamps) {
    integer::Int8Weight w{"w", {}, {}};
    w.value.resize({5});
    w.value.data = {0, 100, -120, 5, 0};
    // Largest gradient 1000 (10 bits), mu 4: k = 6.
    const std::vector<std::int32_t> grad = {1000, -900, 500, 31, -32};
    integer::update_weight(w, grad.data(), {4, false});
    for (std::size_t i = 0; i < grad.size(); ++i)
        EXPECT_EQ(w.value.data[i],
                  std::clamp<std::int64_t>(std::vector<std::int64_t>{0, 100, -120, 5, 0}[i] -
                                               reference_pseudo_shift(grad[i], 6),
                                           -127, 127))
            << i;
    EXPECT_EQ(w.value.data[1], 114);  // 100 + 14: -900 >> 6 = -14.06 -> -14
    // A gradient already within mu bits is subtracted as it is.
    const std::vector<std::int32_t> small = {3, -2, 0, 1, -1};
    const AlignedVector<std::int8_t> before = w.value.data;
    integer::update_weight(w, small.data(), {4, false});
    for (std::size_t i = 0; i < small.size(); ++i)
        EXPECT_EQ(w.value.data[i], std::clamp(before[i] - small[i], -127, 127));
    EXPECT_THROW(integer::update_weight(w, small.data(), {0, false}), Error);
    EXPECT_THROW(integer::update_weight(w, small.data(), {8, false}), Error);
}

TEST(IntegerUpdate, SixteenBitAccumulatorKeepsSmallSteps) {
    integer::Int8Weight w{"w", {}, {}};
    w.value.resize({3});
    w.value.data = {10, -10, 127};
    // mu 1 + 8 fraction bits: the largest step (-256 here) is 1 int8 step; +-64 only a quarter.
    const std::vector<std::int32_t> grad = {-256, 64, -256};
    integer::update_weight(w, grad.data(), {1, true});
    EXPECT_EQ(w.accumulator,
              (std::vector<std::int16_t>{10 * 256 + 256, -10 * 256 - 64, 127 * 256}));
    // The int8 weight is the accumulator rounded pseudo-stochastically: -2624 has rem 64 = hi 4,
    // lo 0 of the 8 discarded bits, so it rounds up to -11 (pseudo-stochastic rounding's
    // "probability" 1/4 is deterministic).
    EXPECT_EQ(w.value.data, (AlignedVector<std::int8_t>{11, -11, 127}));
    // Four quarter steps make one whole step in the accumulator; clamped at +-127 * 2^8.
    for (int i = 0; i < 3; ++i) integer::update_weight(w, grad.data(), {1, true});
    EXPECT_EQ(w.accumulator[1], -11 * 256);
    EXPECT_EQ(w.accumulator[2], 127 * 256);
    for (std::size_t i = 0; i < 3; ++i)
        EXPECT_EQ(w.value.data[i], reference_pseudo_shift(w.accumulator[i], 8));
}

// ---- layers against the FP32 layers ----

// |int8 result - FP32 result| within one output step (the narrowing's rounding) plus FP32's own
// rounding of sums of up to 2^31 (2^-22 of the largest magnitude).
void expect_within_one_step(std::span<const float> got, std::span<const float> want, int exponent,
                            const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    float largest = 0;
    for (const float v : want) largest = std::max(largest, std::abs(v));
    const float bound = std::ldexp(1.0f, exponent) + std::ldexp(largest, -22);
    float worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - want[i]));
    EXPECT_LE(worst, bound) << what;
    std::printf("%-28s worst %.4g bound %.4g PASS\n", what, worst, bound);
}

void expect_gradient_exact(std::span<const std::int32_t> got, int exponent,
                           const std::vector<float>& want, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    float largest = 0;
    for (const float v : want) largest = std::max(largest, std::abs(v));
    for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(std::ldexp(static_cast<float>(got[i]), exponent), want[i],
                    std::ldexp(largest, -22))
            << what << " " << i;
}

nn::Tensor fp32(const Int8Tensor& t) {
    return integer::dequantize(t);
}

TEST(IntegerLayers, ConvolutionMatchesFp32OnAwkwardShapes) {
    struct Case {
        std::int64_t n, h, w, c, k, kernel, stride, pad;
    };
    for (const Case& cs : {Case{2, 7, 6, 3, 5, 3, 2, 1}, Case{1, 9, 9, 1, 20, 5, 1, 0},
                           Case{3, 5, 5, 17, 33, 3, 1, 1}, Case{2, 4, 4, 8, 2, 1, 1, 0}}) {
        nn::Conv2d ref("conv", {.in_channels = cs.c,
                                .out_channels = cs.k,
                                .kernel = cs.kernel,
                                .stride = cs.stride,
                                .pad = cs.pad,
                                .bias = false});
        const Int8Tensor wei = random_int8(ref.weight().shape, -7, 3);
        ref.weight().value = values(wei);
        integer::IntConv2d conv("conv", {cs.c, cs.k, cs.kernel, cs.stride, cs.pad},
                                integer::Int8Weight{"conv.weight", wei, {}});
        const Int8Tensor src = random_int8(
            {std::size_t(cs.n), std::size_t(cs.h), std::size_t(cs.w), std::size_t(cs.c)}, -5, 4);
        Int8Tensor dst;
        conv.forward(src, dst);
        const nn::Tensor src_f = fp32(src);
        const nn::Tensor* srcs[] = {&src_f};
        nn::Tensor dst_f;
        ref.forward(srcs, dst_f, {});
        ASSERT_EQ(dst.shape, dst_f.shape);
        expect_within_one_step(values(dst), dst_f.data, dst.exponent, "conv forward");

        const Int8Tensor diff_dst = random_int8(dst.shape, -9, 5);
        Int8Tensor diff_src;
        conv.backward(src, dst, diff_dst, &diff_src);
        nn::Tensor diff_src_f(src_f.shape);
        nn::Tensor* diffs[] = {&diff_src_f};
        std::fill(ref.weight().grad.begin(), ref.weight().grad.end(), 0.0f);
        ref.backward(srcs, dst_f, fp32(diff_dst), diffs);
        expect_within_one_step(values(diff_src), diff_src_f.data, diff_src.exponent,
                               "conv backward data");
        expect_gradient_exact(conv.weight_gradient(), src.exponent + diff_dst.exponent,
                              ref.weight().grad, "conv weight gradient");
    }
}

TEST(IntegerLayers, LinearMatchesFp32) {
    nn::Linear ref("fc", {.in_features = 37, .out_features = 11, .bias = false});
    const Int8Tensor wei = random_int8(ref.weight().shape, -8, 6);
    ref.weight().value = values(wei);
    integer::IntLinear fc("fc", integer::Int8Weight{"fc.weight", wei, {}});
    const Int8Tensor src = random_int8({3, 37}, 1, 7);
    Int8Tensor dst;
    fc.forward(src, dst);
    const nn::Tensor src_f = fp32(src);
    const nn::Tensor* srcs[] = {&src_f};
    nn::Tensor dst_f;
    ref.forward(srcs, dst_f, {});
    expect_within_one_step(values(dst), dst_f.data, dst.exponent, "linear forward");
    const Int8Tensor diff_dst = random_int8(dst.shape, -7, 8);
    Int8Tensor diff_src;
    fc.backward(src, dst, diff_dst, &diff_src);
    nn::Tensor diff_src_f(src_f.shape);
    nn::Tensor* diffs[] = {&diff_src_f};
    ref.backward(srcs, dst_f, fp32(diff_dst), diffs);
    expect_within_one_step(values(diff_src), diff_src_f.data, diff_src.exponent,
                           "linear backward data");
    expect_gradient_exact(fc.weight_gradient(), src.exponent + diff_dst.exponent, ref.weight().grad,
                          "linear weight gradient");
}

TEST(IntegerLayers, ReluAndMaxPoolEqualFp32) {
    for (const auto& [kernel, stride] : {std::pair<std::int64_t, std::int64_t>{2, 2}, {3, 2}}) {
        nn::MaxPool2d ref("pool", {.kernel = kernel, .stride = stride});
        integer::IntMaxPool2d pool("pool", {kernel, stride});
        // Small values, many ties: the first maximum must win in both.
        const Int8Tensor src = random_int8({2, 7, 5, 3}, -2, 9, 3);
        Int8Tensor dst;
        pool.forward(src, dst);
        const nn::Tensor src_f = fp32(src);
        const nn::Tensor* srcs[] = {&src_f};
        nn::Tensor dst_f;
        ref.forward(srcs, dst_f, {});
        EXPECT_EQ(values(dst), std::vector<float>(dst_f.data.begin(), dst_f.data.end()));
        const Int8Tensor diff_dst = random_int8(dst.shape, -3, 10, 40);
        Int8Tensor diff_src;
        pool.backward(src, dst, diff_dst, &diff_src);
        nn::Tensor diff_src_f(src_f.shape);
        nn::Tensor* diffs[] = {&diff_src_f};
        ref.backward(srcs, dst_f, fp32(diff_dst), diffs);
        EXPECT_EQ(values(diff_src),
                  std::vector<float>(diff_src_f.data.begin(), diff_src_f.data.end()))
            << "kernel " << kernel;
    }
    integer::IntRelu relu("relu");
    const Int8Tensor src = random_int8({4, 9}, 0, 12);
    Int8Tensor dst, diff_src;
    relu.forward(src, dst);
    const Int8Tensor diff_dst = random_int8(dst.shape, -4, 13);
    relu.backward(src, dst, diff_dst, &diff_src);
    for (std::size_t i = 0; i < src.numel(); ++i) {
        EXPECT_EQ(dst.data[i], std::max<std::int8_t>(src.data[i], 0));
        EXPECT_EQ(diff_src.data[i], src.data[i] > 0 ? diff_dst.data[i] : 0);
    }
}

// ---- the net ----

TEST(IntegerNet, OnlyBiasFreeChainsHaveAnIntegerVersion) {
    const models::ImageInput mnist{28, 28, 1, 10};
    for (const std::string& name : models::integer_names()) {
        nn::Net net = models::build(name, mnist);
        EXPECT_NO_THROW(integer::from_net(net, name)) << name;
    }
    nn::Net lenet5 = models::build("lenet5", mnist);
    try {
        integer::from_net(lenet5, "lenet5");
        FAIL() << "lenet5 has biases";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model 'lenet5'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("'conv1' has a bias"), std::string::npos) << e.what();
    }
    nn::Net resnet = models::build("resnet20", mnist);
    EXPECT_THROW(integer::from_net(resnet, "resnet20"), Error);
}

TEST(IntegerNet, LenetLearnsASmallTrainingSet) {
    constexpr std::int64_t kSamples = 128, kBatch = 32, kEpochs = 12;
    data::TrainTest d = data::make_synthetic(1, 28, 28, 10, kSamples, 10);
    data::standardize(d);
    nn::Net fp = models::build("niti_lenet", {28, 28, 1, 10});
    integer::IntNet net = integer::from_net(fp, "niti_lenet");
    std::vector<int> labels;
    std::vector<std::int64_t> indices(kBatch);
    Int8Tensor images;
    std::int64_t first_epoch = 0, last_epoch = 0;
    std::uint64_t iteration = 0;
    for (std::int64_t epoch = 0; epoch < kEpochs; ++epoch) {
        std::int64_t correct = 0;
        for (std::int64_t first = 0; first < kSamples; first += kBatch, ++iteration) {
            for (std::int64_t i = 0; i < kBatch; ++i) indices[i] = first + i;
            integer::quantize_images(train::image_batch(d.train, indices, labels), images);
            correct += net.train_step(images, labels, {3, false}, 1, iteration);
        }
        (epoch == 0 ? first_epoch : last_epoch) = correct;
    }
    std::printf("integer niti_lenet: %lld/%lld correct in epoch 1, %lld in epoch %lld\n",
                static_cast<long long>(first_epoch), static_cast<long long>(kSamples),
                static_cast<long long>(last_epoch), static_cast<long long>(kEpochs));
    EXPECT_LT(first_epoch, kSamples / 2);
    EXPECT_GE(last_epoch, kSamples * 9 / 10);
    const train::Evaluation e = integer::evaluate(net, d.train, 50);
    EXPECT_GE(e.top1, 0.9);
}

TEST(IntegerNet, StepsAreReproducibleOnAnyThreadCount) {
    // Integer arithmetic is exact and the loss gradient's random bits are keyed by seed, iteration
    // and element: one thread and two give the same weights, bit for bit.
    data::TrainTest d = data::make_synthetic(1, 12, 12, 4, 16, 4);
    data::standardize(d);
    std::vector<AlignedVector<std::int8_t>> weights[2];
    const int max_threads = omp_get_max_threads();
    for (int run = 0; run < 2; ++run) {
        omp_set_num_threads(run + 1);
        nn::Net fp = models::build("vgg_small", {12, 12, 1, 4});
        integer::IntNet net = integer::from_net(fp, "vgg_small");
        std::vector<int> labels;
        std::vector<std::int64_t> indices(16);
        for (std::int64_t i = 0; i < 16; ++i) indices[i] = i;
        Int8Tensor images;
        integer::quantize_images(train::image_batch(d.train, indices, labels), images);
        for (std::uint64_t it = 0; it < 3; ++it) net.train_step(images, labels, {5, true}, 9, it);
        for (const integer::Int8Weight* w : net.weights()) weights[run].push_back(w->value.data);
    }
    omp_set_num_threads(max_threads);
    EXPECT_EQ(weights[0], weights[1]);
}

}  // namespace
}  // namespace dfp

namespace dfp {
namespace {

// The integer engine's GEMMs skip the data-dependent INT32 proof for int8 when K < 2^17
// (kernels/gemm.cpp): the worst case just below that K, every product (-128)(-128), is exact.
TEST(IntegerGemm, ShortKNeedsNoProofEvenAtTheWorstCase) {
    constexpr std::int64_t k = (std::int64_t{1} << 17) - 1;
    const std::vector<std::int8_t> a(k, -128), b(k, -128);
    std::int32_t c = 0;
    kernels::gemm_s8s8s32(1, 1, k, {.data = a.data(), .ld = k}, {.data = b.data(), .ld = 1}, &c, 1);
    EXPECT_EQ(c, k * 128 * 128);
}

// The test accuracy of int8 runs reads int8 logits, where ties are common: a tie must count
// against the label (it once counted for it, so all-equal logits scored 100%).
TEST(TrainCountTopK, TiesAndNanCountAgainstTheLabel) {
    nn::Tensor logits({4, 3});
    logits.data = {1, 1, 1, 0, 2, 2, -1, 0, 5, std::nanf(""), 0, 5};
    const std::vector<int> labels = {0, 1, 2, 2};
    EXPECT_EQ(train::count_top_k(logits, labels, 1), 1);  // only row 2
    EXPECT_EQ(train::count_top_k(logits, labels, 2), 3);  // rows 1 and 3: one class above
    EXPECT_EQ(train::count_top_k(logits, labels, 3), 4);
}

}  // namespace
}  // namespace dfp
