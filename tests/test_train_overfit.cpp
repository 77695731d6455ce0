// End to end, in FP32 and in the paper's mixed precision (precision::Policy::dfp16(): conv2 and
// conv3 on the DFP16 GEMM, conv1 and fc in FP32), and with every conv/linear layer in DFP16: a
// small network with every kind of join (conv-bn-relu, a residual Add, a channel Concat, max
// pooling, a fully connected head) overfits 16 fixed random 8x8 images with random labels to zero
// training error with SGD, within a bounded number of steps; and a NaN stops training with the
// iteration and the layer (FP32) or the tensor (DFP16, which meets it when quantizing) named.
#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/join.hpp"
#include "nn/linear.hpp"
#include "nn/net.hpp"
#include "nn/norm.hpp"
#include "nn/pool.hpp"
#include "precision/policy.hpp"
#include "train/schedule.hpp"
#include "train/sgd.hpp"
#include "train/train_step.hpp"

namespace dfp::train {
namespace {

using namespace dfp::nn;

constexpr std::size_t kBatch = 16, kSize = 8, kChannels = 3;
constexpr int kClasses = 4;
constexpr int kMaxSteps = 200;

struct PrecisionCase {
    const char* spec;            // precision::Policy::parse
    const char* nan_in_conv2;    // what the error names for a NaN in conv2's weights
};

void PrintTo(const PrecisionCase& p, std::ostream* os) { *os << p.spec; }

class TrainOverfit : public ::testing::TestWithParam<PrecisionCase> {};

void build(Net& net, const precision::Policy& policy) {
    const int c1 = net.add<Conv2d>(
        {Net::kInput}, "conv1",
        Conv2dConfig{.in_channels = 3, .out_channels = 8, .kernel = 3, .pad = 1, .bias = false});
    const int b1 = net.add<BatchNorm2d>({c1}, "bn1", BatchNormConfig{.channels = 8});
    const int r1 = net.add<Relu>({b1}, "relu1");
    const int c2 = net.add<Conv2d>(
        {r1}, "conv2",
        Conv2dConfig{.in_channels = 8, .out_channels = 8, .kernel = 3, .pad = 1, .bias = false});
    const int b2 = net.add<BatchNorm2d>({c2}, "bn2", BatchNormConfig{.channels = 8});
    const int res = net.add<Add>({b2, r1}, "res");
    const int r2 = net.add<Relu>({res}, "relu2");
    const int c3 = net.add<Conv2d>({r2}, "conv3",
                                   Conv2dConfig{.in_channels = 8, .out_channels = 4, .kernel = 1});
    const int cat = net.add<Concat>({r2, c3}, "cat");
    const int pool = net.add<MaxPool2d>({cat}, "pool", Pool2dConfig{});
    net.add<Linear>({pool}, "fc",
                    LinearConfig{.in_features = 4 * 4 * 12, .out_features = kClasses});
    net.apply_precision(policy);
}

struct Batch {
    Tensor images{{kBatch, kSize, kSize, kChannels}};
    std::vector<int> labels = std::vector<int>(kBatch);
};

Batch random_batch() {
    Batch b;
    std::mt19937 rng(2024);
    std::normal_distribution<float> pixel(0.0f, 1.0f);
    for (auto& x : b.images.data) x = pixel(rng);
    std::uniform_int_distribution<int> label(0, kClasses - 1);
    for (auto& y : b.labels) y = label(rng);
    return b;
}

TEST_P(TrainOverfit, SmallNetReachesZeroTrainingError) {
    Net net;
    build(net, precision::Policy::parse(GetParam().spec));
    Sgd sgd(net.params(), {.momentum = 0.9f, .weight_decay = 1e-4f});
    const LrSchedule lr = linear_warmup(10, 0.1, constant_lr(0.05));
    const Batch batch = random_batch();
    int steps = 0;
    StepStats stats{};
    for (; steps < kMaxSteps; ++steps) {
        stats = train_step(net, sgd, batch.images, batch.labels, float(lr(steps)), steps);
        if (stats.correct == std::int64_t(kBatch)) break;
    }
    std::printf("overfit %-31s conv-bn-relu-res-concat-pool-fc: %d steps to %ld/%zu, loss %.4f\n",
                GetParam().spec, steps, long(stats.correct), kBatch, stats.loss);
    EXPECT_LT(steps, kMaxSteps) << "no zero training error in " << kMaxSteps << " steps";
    EXPECT_EQ(stats.correct, std::int64_t(kBatch));
    // The first step starts near chance: log(4) = 1.39; training must have moved it.
    EXPECT_LT(stats.loss, 1.0f);
}

TEST_P(TrainOverfit, NanInAWeightStopsTrainingNamingIterationAndLayer) {
    Net net;
    build(net, precision::Policy::parse(GetParam().spec));
    Sgd sgd(net.params(), {});
    const Batch batch = random_batch();
    train_step(net, sgd, batch.images, batch.labels, 0.01f, 0);
    Param* conv2 = net.params()[3];
    ASSERT_EQ(conv2->name, "conv2.weight");
    conv2->value[5] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> fc_before = net.params().back()->value;
    try {
        train_step(net, sgd, batch.images, batch.labels, 0.01f, 1);
        FAIL() << "no error for a NaN weight";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("iteration 1"), std::string::npos) << what;
        EXPECT_NE(what.find(GetParam().nan_in_conv2), std::string::npos) << what;
    }
    EXPECT_EQ(net.params().back()->value, fc_before);  // no update
}

INSTANTIATE_TEST_SUITE_P(
    Train, TrainOverfit,
    ::testing::Values(PrecisionCase{"fp32", "layer 'conv2'"},
                      PrecisionCase{"dfp16", "tensor 'conv2.weight'"},
                      PrecisionCase{"dfp16,first=dfp16,last=dfp16", "tensor 'conv2.weight'"},
                      PrecisionCase{"dfp8", "tensor 'conv2.weight'"}));

}  // namespace
}  // namespace dfp::train
