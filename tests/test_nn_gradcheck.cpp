// Numeric gradient checks of every layer and of a small Net: analytic gradients from backward
// against central differences (f(x + eps) - f(x - eps)) / (2 eps) of the scalar
// L = sum(dst * probe), probe a fixed random tensor.
//
// Tolerance, stated once for all cases: eps = 1e-2 on data of magnitude ~1, L summed in double
// over FP32 outputs, and a gradient passes when |analytic - numeric| <= 2e-3 + 1e-2 |numeric|.
// FP32 rounding of L (~1e-7 relative, over a few hundred outputs) gives numeric errors ~2e-4 at
// this eps, and the truncation error of the smooth layers (BN, LRN, softmax) is O(eps^2) ~1e-4;
// a wrong gradient is off by O(1). Non-smooth layers get data kept away from their kinks:
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
#include <string>
#include <vector>

#include "base/error.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/loss.hpp"
#include "nn/net.hpp"

namespace dfp::nn {
namespace {

constexpr float kEps = 1e-2f;
constexpr double kAbsTol = 2e-3, kRelTol = 1e-2;
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
    t.data = uniform(t.numel(), lo, hi, seed);
    return t;
}

// One tensor to check: its values (perturbed in place) and the analytic gradient.
struct Checked {
    std::string what;
    std::vector<float>* values;
    std::vector<float> analytic;
};

// The worst |analytic - numeric| / (kAbsTol + kRelTol |numeric|) over every element of every
// checked tensor: <= 1 passes. Prints one row per tensor.
double worst_error(const std::string& title, const std::function<double()>& loss,
                   std::vector<Checked>& checked) {
    double worst = 0.0;
    for (Checked& c : checked) {
        double worst_here = 0.0, max_abs_diff = 0.0;
        for (std::size_t i = 0; i < c.values->size(); ++i) {
            const float saved = (*c.values)[i];
            (*c.values)[i] = saved + kEps;
            const double up = loss();
            (*c.values)[i] = saved - kEps;
            const double down = loss();
            (*c.values)[i] = saved;
            const double numeric = (up - down) / (2.0 * kEps);
            const double diff = std::abs(c.analytic[i] - numeric);
            max_abs_diff = std::max(max_abs_diff, diff);
            worst_here = std::max(worst_here, diff / (kAbsTol + kRelTol * std::abs(numeric)));
        }
        std::printf("gradcheck %-36s %-16s n=%-5zu max|diff|=%.2e  %s\n", title.c_str(),
                    c.what.c_str(), c.values->size(), max_abs_diff,
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

std::vector<float> minus_start(const std::vector<float>& g) {
    std::vector<float> out(g);
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
            {"src" + std::to_string(i), &srcs[i].data, minus_start(diff_srcs[i].data)});
    for (Param* p : layer.params()) checked.push_back({p->name, &p->value, minus_start(p->grad)});
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
    std::vector<Checked> checked = {{"logits", &logits.data, dlogits.data}};
    Tensor scratch;
    const auto loss = [&] { return double(softmax_cross_entropy(logits, labels, scratch)); };
    EXPECT_LE(worst_error("softmax_cross_entropy 4x7", loss, checked), 1.0);
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
