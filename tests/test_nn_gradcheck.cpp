// Numeric gradient checks of every layer and of a small Net: analytic gradients from backward
// against central differences (f(x + eps) - f(x - eps)) / (2 eps) of the scalar
// L = sum(dst * probe), probe a fixed random tensor.
//
// Tolerance, stated once for all cases: eps = 1e-2 on data of magnitude ~1, L summed in double
// over FP32 outputs, and a gradient passes when |analytic - numeric| <= 5e-4 + 5e-3 |numeric|.
// FP32 rounding of the outputs (~6e-8 relative, a few hundred of them) puts up to ~1e-4 of noise
// into the numeric gradient at this eps, and the truncation error of the smooth layers (BN, LRN,
// softmax) is O(eps^2) ~1e-4; measured differences stay below 1e-4. A wrong gradient is off by
// O(1e-1) or more. Non-smooth layers get data kept away from their kinks:
// |x| >= 0.1 for ReLU, distinct values at least 0.05 apart for MaxPool. The last test shows the
// checker fails on a wrong gradient.
//
// Every gradient buffer starts at 0.25, not 0, so the checks also prove that backward adds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/join.hpp"
#include "nn/linear.hpp"
#include "nn/loss.hpp"
#include "nn/net.hpp"
#include "nn/norm.hpp"
#include "nn/pool.hpp"

namespace dfp::nn {
namespace {

constexpr float kEps = 1e-2f;
constexpr double kAbsTol = 5e-4, kRelTol = 5e-3;
constexpr float kGradStart = 0.25f;  // initial value of every gradient buffer

std::vector<float> uniform(std::size_t n, float lo, float hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

Tensor random_tensor(Shape shape, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    Tensor t(std::move(shape));
    t.data = aligned_copy<float>(uniform(t.numel(), lo, hi, seed));
    return t;
}

// One tensor to check: its values (perturbed in place) and the analytic gradient.
struct Checked {
    std::string what;
    std::span<float> values;  // perturbed in place
    std::vector<float> analytic;
};

// The worst |analytic - numeric| / (kAbsTol + kRelTol |numeric|) over every element of every
// checked tensor: <= 1 passes. Prints one row per tensor.
double worst_error(const std::string& title, const std::function<double()>& loss,
                   std::vector<Checked>& checked) {
    double worst = 0.0;
    for (Checked& c : checked) {
        double worst_here = 0.0, max_abs_diff = 0.0;
        for (std::size_t i = 0; i < c.values.size(); ++i) {
            const float saved = c.values[i];
            c.values[i] = saved + kEps;
            const double up = loss();
            c.values[i] = saved - kEps;
            const double down = loss();
            c.values[i] = saved;
            const double numeric = (up - down) / (2.0 * kEps);
            const double diff = std::abs(c.analytic[i] - numeric);
            max_abs_diff = std::max(max_abs_diff, diff);
            worst_here = std::max(worst_here, diff / (kAbsTol + kRelTol * std::abs(numeric)));
        }
        std::printf("gradcheck %-36s %-16s n=%-5zu max|diff|=%.2e  %s\n", title.c_str(),
                    c.what.c_str(), c.values.size(), max_abs_diff,
                    worst_here <= 1.0 ? "PASS" : "FAIL");
        worst = std::max(worst, worst_here);
    }
    return worst;
}

double dot(const Tensor& a, const Tensor& b) {
    double s = 0.0;
    for (std::size_t i = 0; i < a.numel(); ++i) s += static_cast<double>(a.data[i]) * b.data[i];
    return s;
}

std::vector<float> minus_start(std::span<const float> g) {
    std::vector<float> out(g.begin(), g.end());
    for (auto& x : out) x -= kGradStart;
    return out;
}

// Checks the gradients of every src and parameter of `layer`.
double check_layer(const std::string& title, Layer& layer, std::vector<Tensor> srcs,
                   const Context& ctx = {}) {
    std::vector<const Tensor*> src_ptrs;
    for (const Tensor& t : srcs) src_ptrs.push_back(&t);
    Tensor dst;
    layer.forward(src_ptrs, dst, ctx);
    const Tensor probe = random_tensor(dst.shape, 99);

    std::vector<Tensor> diff_srcs;
    for (const Tensor& t : srcs) {
        diff_srcs.emplace_back(t.shape);
        std::fill(diff_srcs.back().data.begin(), diff_srcs.back().data.end(), kGradStart);
    }
    std::vector<Tensor*> diff_ptrs;
    for (Tensor& t : diff_srcs) diff_ptrs.push_back(&t);
    for (Param* p : layer.params()) std::fill(p->grad.begin(), p->grad.end(), kGradStart);
    layer.backward(src_ptrs, dst, probe, diff_ptrs);

    std::vector<Checked> checked;
    for (std::size_t i = 0; i < srcs.size(); ++i)
        checked.push_back(
            {"src" + std::to_string(i), srcs[i].data, minus_start(diff_srcs[i].data)});
    for (Param* p : layer.params()) checked.push_back({p->name, p->value, minus_start(p->grad)});
    const auto loss = [&] {
        Tensor out;
        layer.forward(src_ptrs, out, ctx);
        return dot(out, probe);
    };
    return worst_error(title, loss, checked);
}

TEST(NnGradcheck, Conv2dStride2PadBiasOddNonSquare) {
    Conv2d conv("conv", {.in_channels = 3, .out_channels = 4, .kernel = 3, .stride = 2, .pad = 1});
    EXPECT_LE(check_layer("conv2d 3x3 s2 p1 bias 2x5x7x3", conv, {random_tensor({2, 5, 7, 3}, 1)}),
              1.0);
}

TEST(NnGradcheck, Conv2d1x1NoBias) {
    Conv2d conv("conv", {.in_channels = 5, .out_channels = 3, .kernel = 1, .bias = false});
    EXPECT_LE(check_layer("conv2d 1x1 s1 nobias 2x3x4x5", conv, {random_tensor({2, 3, 4, 5}, 2)}),
              1.0);
}

TEST(NnGradcheck, Conv2dKernel2Stride3Pad1) {
    Conv2d conv("conv", {.in_channels = 2, .out_channels = 3, .kernel = 2, .stride = 3, .pad = 1});
    EXPECT_LE(check_layer("conv2d 2x2 s3 p1 1x7x6x2", conv, {random_tensor({1, 7, 6, 2}, 3)}), 1.0);
}

TEST(NnGradcheck, LinearOnNhwc) {
    Linear fc("fc", {.in_features = 2 * 3 * 2, .out_features = 5});
    EXPECT_LE(check_layer("linear 12->5 on 3x2x3x2", fc, {random_tensor({3, 2, 3, 2}, 4)}), 1.0);
}

TEST(NnGradcheck, Relu) {
    Tensor src = random_tensor({2, 3, 5, 3}, 5, 0.1f, 1.0f);
    // Random signs, magnitudes >= 0.1 > kEps: no element crosses the kink.
    const std::vector<float> sign = uniform(src.numel(), -1.0f, 1.0f, 6);
    for (std::size_t i = 0; i < src.numel(); ++i) src.data[i] *= sign[i] < 0 ? -1.0f : 1.0f;
    Relu relu("relu");
    EXPECT_LE(check_layer("relu 2x3x5x3", relu, {src}), 1.0);
}

TEST(NnGradcheck, DropoutTrainAndEval) {
    Dropout drop("drop", 0.3f);
    EXPECT_LE(check_layer("dropout p=0.3 train", drop, {random_tensor({2, 3, 3, 4}, 7)},
                          {Mode::train, 5}),
              1.0);
    EXPECT_LE(
        check_layer("dropout p=0.3 eval", drop, {random_tensor({2, 3, 3, 4}, 8)}, {Mode::eval, 5}),
        1.0);
}

TEST(NnGradcheck, SoftmaxCrossEntropy) {
    Tensor logits = random_tensor({4, 1, 1, 7}, 9, -3.0f, 3.0f);
    const std::vector<int> labels = {0, 6, 3, 3};
    Tensor dlogits;
    softmax_cross_entropy(logits, labels, dlogits);
    std::vector<Checked> checked = {
        {"logits", logits.data, {dlogits.data.begin(), dlogits.data.end()}}};
    Tensor scratch;
    const auto loss = [&] { return double(softmax_cross_entropy(logits, labels, scratch)); };
    EXPECT_LE(worst_error("softmax_cross_entropy 4x7", loss, checked), 1.0);
}

// Distinct values at least 0.05 apart (a shuffled ramp), so no perturbation changes a maximum.
Tensor distinct_tensor(Shape shape, unsigned seed) {
    Tensor t(std::move(shape));
    for (std::size_t i = 0; i < t.numel(); ++i) t.data[i] = 0.05f * float(i) - 1.0f;
    std::mt19937 rng(seed);
    std::shuffle(t.data.begin(), t.data.end(), rng);
    return t;
}

TEST(NnGradcheck, MaxPool) {
    MaxPool2d pool("pool", {.kernel = 3, .stride = 2, .pad = 1});
    EXPECT_LE(check_layer("maxpool 3x3 s2 p1 2x5x6x3", pool, {distinct_tensor({2, 5, 6, 3}, 11)}),
              1.0);
    MaxPool2d ceil_pool("pool_ceil", {.kernel = 3, .stride = 2, .ceil_mode = true});
    EXPECT_LE(
        check_layer("maxpool 3x3 s2 ceil 1x6x7x2", ceil_pool, {distinct_tensor({1, 6, 7, 2}, 12)}),
        1.0);
}

TEST(NnGradcheck, AvgPool) {
    AvgPool2d pool("pool", {.kernel = 3, .stride = 2, .pad = 1});
    EXPECT_LE(check_layer("avgpool 3x3 s2 p1 2x5x6x3", pool, {random_tensor({2, 5, 6, 3}, 13)}),
              1.0);
    AvgPool2d ceil_pool("pool_ceil", {.kernel = 2, .stride = 2, .ceil_mode = true});
    EXPECT_LE(
        check_layer("avgpool 2x2 s2 ceil 1x5x7x2", ceil_pool, {random_tensor({1, 5, 7, 2}, 14)}),
        1.0);
}

TEST(NnGradcheck, GlobalAvgPool) {
    GlobalAvgPool pool("gap");
    EXPECT_LE(check_layer("global_avgpool 2x3x5x4", pool, {random_tensor({2, 3, 5, 4}, 15)}), 1.0);
}

TEST(NnGradcheck, BatchNormTrainAndEval) {
    BatchNorm2d bn("bn", {.channels = 4});
    bn.gamma().value = uniform(4, 0.5f, 1.5f, 16);
    bn.beta().value = uniform(4, -0.5f, 0.5f, 17);
    EXPECT_LE(check_layer("batchnorm train 3x2x3x4", bn, {random_tensor({3, 2, 3, 4}, 18)},
                          {Mode::train, 0}),
              1.0);
    bn.running_mean() = uniform(4, -0.5f, 0.5f, 19);
    bn.running_var() = uniform(4, 0.5f, 2.0f, 20);
    EXPECT_LE(check_layer("batchnorm eval 3x2x3x4", bn, {random_tensor({3, 2, 3, 4}, 21)},
                          {Mode::eval, 0}),
              1.0);
}

TEST(NnGradcheck, Lrn) {
    // alpha large enough that the cross-channel term matters; 7 channels clip windows of 5.
    Lrn lrn("lrn", {.size = 5, .alpha = 2.0f, .beta = 0.75f, .k = 1.0f});
    EXPECT_LE(check_layer("lrn size5 alpha2 2x3x2x7", lrn, {random_tensor({2, 3, 2, 7}, 22)}), 1.0);
    Lrn alexnet("lrn_alexnet", {.size = 5, .alpha = 1e-4f, .beta = 0.75f, .k = 2.0f});
    EXPECT_LE(check_layer("lrn alexnet 1x2x2x6", alexnet, {random_tensor({1, 2, 2, 6}, 23)}), 1.0);
}

TEST(NnGradcheck, AddThreeInputs) {
    Add add("add");
    EXPECT_LE(check_layer("add x3 2x3x2x4", add,
                          {random_tensor({2, 3, 2, 4}, 24), random_tensor({2, 3, 2, 4}, 25),
                           random_tensor({2, 3, 2, 4}, 26)}),
              1.0);
}

TEST(NnGradcheck, ConcatChannels) {
    Concat cat("cat");
    EXPECT_LE(check_layer("concat 3+1+5 channels 2x3x2", cat,
                          {random_tensor({2, 3, 2, 3}, 27), random_tensor({2, 3, 2, 1}, 28),
                           random_tensor({2, 3, 2, 5}, 29)}),
              1.0);
}

// A DAG in which one node feeds three layers and another feeds two: the parameter gradients
// of the whole Net, so fan-out accumulation and the reverse order are checked end to end.
// (No ReLU or MaxPool: a perturbed weight would move many pre-activations across a kink.)
TEST(NnGradcheck, NetWithFanOutAddAndConcat) {
    Net net;
    const int c1 =
        net.add<Conv2d>({Net::kInput}, "conv1",
                        Conv2dConfig{.in_channels = 3, .out_channels = 4, .kernel = 3, .pad = 1});
    const int bn1 = net.add<BatchNorm2d>({c1}, "bn1", BatchNormConfig{.channels = 4});
    const int c2a = net.add<Conv2d>(
        {bn1}, "conv2a",
        Conv2dConfig{.in_channels = 4, .out_channels = 4, .kernel = 3, .pad = 1, .bias = false});
    const int c2b =
        net.add<Conv2d>({bn1}, "conv2b", Conv2dConfig{.in_channels = 4, .out_channels = 4});
    const int sum = net.add<Add>({c2a, c2b, bn1}, "add");
    const int cat = net.add<Concat>({sum, bn1}, "cat");
    const int pool = net.add<AvgPool2d>({cat}, "pool", Pool2dConfig{.ceil_mode = true});
    net.add<Linear>({pool}, "fc", LinearConfig{.in_features = 3 * 3 * 8, .out_features = 3});

    const Tensor src = random_tensor({2, 6, 5, 3}, 30);
    const Context ctx{Mode::train, 0};
    const Tensor probe = random_tensor(net.forward(src, ctx).shape, 31);
    for (Param* p : net.params()) std::fill(p->grad.begin(), p->grad.end(), kGradStart);
    net.backward(probe);
    std::vector<Checked> checked;
    for (Param* p : net.params()) checked.push_back({p->name, p->value, minus_start(p->grad)});
    const auto loss = [&] { return dot(net.forward(src, ctx), probe); };
    EXPECT_LE(worst_error("net conv-bn-{conv,conv}-add-concat-pool-fc", loss, checked), 1.0);
}

// Proves the checker can fail: a layer whose backward is off by 10% in one element.
class WrongSquare : public Layer {
  public:
    WrongSquare() : Layer("wrong") {}
    const char* kind() const override { return "wrong_square"; }
    void forward(Srcs src, Tensor& dst, const Context&) override {
        dst.resize(src[0]->shape);
        for (std::size_t i = 0; i < dst.numel(); ++i)
            dst.data[i] = src[0]->data[i] * src[0]->data[i];
    }
    void backward(Srcs src, const Tensor&, const Tensor& diff_dst, DiffSrcs diff_src) override {
        for (std::size_t i = 0; i < diff_dst.numel(); ++i)
            diff_src[0]->data[i] += (i == 3 ? 2.2f : 2.0f) * src[0]->data[i] * diff_dst.data[i];
    }
};

TEST(NnGradcheck, CheckerCatchesAWrongGradient) {
    WrongSquare wrong;
    Tensor src = random_tensor({1, 2, 2, 2}, 10, 0.5f, 1.0f);
    EXPECT_GT(check_layer("wrong_square (must FAIL)", wrong, {src}), 1.0);
}

}  // namespace
}  // namespace dfp::nn
