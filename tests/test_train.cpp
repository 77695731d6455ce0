// SGD updates against hand-computed values (plain, momentum, Nesterov, weight decay), the NaN/Inf
// stop, and learning-rate schedules at chosen iterations.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "models/registry.hpp"
#include "models/summary.hpp"
#include "nn/tensor.hpp"
#include "train/memory.hpp"
#include "train/schedule.hpp"
#include "train/sgd.hpp"

namespace dfp::train {
namespace {

// Two SGD steps on one weight w = 1 with gradient 0.5 each time, lr 0.1; returns w after each.
std::vector<float> two_steps(const SgdConfig& config) {
    nn::Param p("w", {1});
    p.value = {1.0f};
    Sgd sgd({&p}, config);
    std::vector<float> out;
    for (int it = 0; it < 2; ++it) {
        p.grad = {0.5f};
        sgd.step(0.1f, it);
        out.push_back(p.value[0]);
    }
    return out;
}

// LeNet-5 on 28x28x1: the input and every node's output per image (shape inference), twice (values
// and gradients), in FP32; a batch fits exactly up to available / that, and one more is refused
// with --batch and the largest batch named.
TEST(TrainMemory, BatchThatDoesNotFitIsRefusedNamingBatch) {
    const models::ImageInput in;
    nn::Net net = models::build("lenet5", in);
    std::int64_t values = 28 * 28;
    for (const models::LayerStats& l : models::layer_stats(net, in))
        values += static_cast<std::int64_t>(shape_numel(l.dst));
    const std::int64_t per_image = training_bytes_per_image(net, in);
    EXPECT_EQ(per_image, 2 * 4 * values);
    const std::int64_t available = 10 * per_image + per_image / 2;
    EXPECT_NO_THROW(check_batch_fits(net, in, 10, 10, available));
    EXPECT_NO_THROW(
        check_batch_fits(net, in, 1000000, 1000000, std::nullopt));  // unknown: no check
    try {
        check_batch_fits(net, in, 12, 11, available);
        FAIL() << "no error for a batch that does not fit";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("--batch 12: 11 images"), std::string::npos) << what;
        EXPECT_NE(what.find("at most 10 images"), std::string::npos) << what;
    }
    ASSERT_TRUE(available_memory().has_value()) << "Linux has /proc/meminfo";
    EXPECT_GT(*available_memory(), 0);
}

TEST(TrainSgd, PlainStep) {
    // w = 1 - 0.1 * 0.5, twice
    const auto w = two_steps({.momentum = 0.0f});
    EXPECT_NEAR(w[0], 0.95f, 1e-6f);
    EXPECT_NEAR(w[1], 0.90f, 1e-6f);
}

TEST(TrainSgd, MomentumAndWeightDecay) {
    // g1 = 0.5 + 0.01 * 1 = 0.51, v1 = 0.51, w1 = 1 - 0.051 = 0.949
    // g2 = 0.5 + 0.01 * 0.949 = 0.50949, v2 = 0.9 * 0.51 + 0.50949 = 0.96849,
    // w2 = 0.949 - 0.096849 = 0.852151
    const auto w = two_steps({.momentum = 0.9f, .weight_decay = 0.01f});
    EXPECT_NEAR(w[0], 0.949f, 1e-6f);
    EXPECT_NEAR(w[1], 0.852151f, 1e-6f);
}

TEST(TrainSgd, Nesterov) {
    // step 1: g = 0.51, v = 0.51, w = 1 - 0.1 (0.51 + 0.9 * 0.51) = 0.9031
    // step 2: g = 0.5 + 0.01 * 0.9031 = 0.509031, v = 0.459 + 0.509031 = 0.968031,
    //         w = 0.9031 - 0.1 (0.509031 + 0.9 * 0.968031) = 0.76507411
    const auto w = two_steps({.momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
    EXPECT_NEAR(w[0], 0.9031f, 1e-6f);
    EXPECT_NEAR(w[1], 0.76507411f, 1e-6f);
}

TEST(TrainSgd, NonFiniteGradientStopsBeforeAnyUpdate) {
    nn::Param a("conv1.weight", {3}), b("fc.bias", {2});
    a.value = {1.0f, 2.0f, 3.0f};
    b.value = {4.0f, 5.0f};
    a.grad = {0.1f, 0.1f, 0.1f};
    b.grad = {0.1f, std::numeric_limits<float>::quiet_NaN()};
    Sgd sgd({&a, &b}, {});
    try {
        sgd.step(0.1f, 42);
        FAIL() << "no error for a NaN gradient";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("iteration 42"), std::string::npos) << what;
        EXPECT_NE(what.find("'fc.bias'"), std::string::npos) << what;
        EXPECT_NE(what.find("element 1"), std::string::npos) << what;
    }
    EXPECT_EQ(a.value, (std::vector<float>{1.0f, 2.0f, 3.0f}));
    EXPECT_EQ(b.value, (std::vector<float>{4.0f, 5.0f}));
    EXPECT_EQ(sgd.velocity(0), (std::vector<float>{0.0f, 0.0f, 0.0f}));
}

// A gradient cleared by zero_grad (Param::clear_grad) with no backward since is zero to SGD,
// whatever its buffer holds: a rank without samples in data-parallel training steps so.
TEST(TrainSgd, ClearedGradientIsZero) {
    nn::Param a("fc.weight", {2});
    a.value = {1.0f, -2.0f};
    a.grad = {std::numeric_limits<float>::quiet_NaN(), 3.0f};
    a.clear_grad();
    Sgd sgd({&a}, {.momentum = 0.9f, .weight_decay = 0.01f});
    sgd.step(0.1f, 0);
    // w -= 0.1 * (0 + 0.01 w)
    EXPECT_EQ(a.value, (std::vector<float>{1.0f - 0.1f * (0.01f * 1.0f),
                                           -2.0f - 0.1f * (0.01f * -2.0f)}));
    EXPECT_EQ(a.grad, (std::vector<float>{0.0f, 0.0f}));
}

// Large gradients take the vectorized parallel check: every non-finite kind anywhere is found and
// named by its first index, and the largest finite and the subnormal values are not flagged.
TEST(TrainSgd, NonFiniteFoundInLargeGradientsOnly) {
    constexpr std::size_t n = 100003;  // beyond kMinParallelElements, not a multiple of a vector
    for (const float bad :
         {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
        for (const std::size_t at : {std::size_t{0}, std::size_t{77777}, n - 1}) {
            nn::Param p("fc6.weight", {n});
            p.value.assign(n, 1.0f);
            p.grad.assign(n, std::numeric_limits<float>::max());
            p.grad[5] = std::numeric_limits<float>::denorm_min();
            p.grad[at] = bad;
            if (at + 1 < n) p.grad[n - 1] = bad;  // a later one is not the one named
            Sgd sgd({&p}, {});
            try {
                sgd.step(0.0f, 3);
                ADD_FAILURE() << "no error for " << bad << " at " << at;
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find("element " + std::to_string(at) + ";"),
                          std::string::npos)
                    << e.what();
            }
        }
    nn::Param ok("fc6.weight", {n});
    ok.value.assign(n, 1.0f);
    ok.grad.assign(n, -std::numeric_limits<float>::max());
    ok.grad[9] = -std::numeric_limits<float>::denorm_min();
    Sgd sgd({&ok}, {.momentum = 0.0f});
    EXPECT_NO_THROW(sgd.step(0.0f, 4));
}

TEST(TrainSgd, BadConfigurationsAreErrors) {
    nn::Param p("w", {1});
    EXPECT_THROW(Sgd({&p}, {.momentum = 0.0f, .nesterov = true}), Error);
    EXPECT_THROW(Sgd({&p}, {.momentum = 1.0f}), Error);
    EXPECT_THROW(Sgd({&p}, {.weight_decay = -1.0f}), Error);
}

TEST(TrainSchedule, StepAndMultiStep) {
    const LrSchedule step = step_lr(0.1, 10, 0.5);
    EXPECT_DOUBLE_EQ(step(0), 0.1);
    EXPECT_DOUBLE_EQ(step(9), 0.1);
    EXPECT_DOUBLE_EQ(step(10), 0.05);
    EXPECT_DOUBLE_EQ(step(25), 0.025);
    // The paper's ResNet-50 schedule, in epochs: x0.1 at 30, 60 and 80.
    const LrSchedule multi = multi_step_lr(0.1, {30, 60, 80}, 0.1);
    EXPECT_DOUBLE_EQ(multi(29), 0.1);
    EXPECT_NEAR(multi(30), 0.01, 1e-15);
    EXPECT_NEAR(multi(59), 0.01, 1e-15);
    EXPECT_NEAR(multi(60), 1e-3, 1e-15);
    EXPECT_NEAR(multi(80), 1e-4, 1e-15);
    EXPECT_NEAR(multi(1000), 1e-4, 1e-15);
}

TEST(TrainSchedule, CosineAndPoly) {
    const LrSchedule cosine = cosine_lr(1.0, 100, 0.1);
    EXPECT_DOUBLE_EQ(cosine(0), 1.0);
    EXPECT_NEAR(cosine(25), 0.1 + 0.9 * (1.0 + std::sqrt(0.5)) / 2.0, 1e-12);
    EXPECT_NEAR(cosine(50), 0.55, 1e-12);
    EXPECT_NEAR(cosine(100), 0.1, 1e-12);
    EXPECT_NEAR(cosine(150), 0.1, 1e-12);
    const LrSchedule poly = poly_lr(0.06, 100, 0.5);  // GoogLeNet-v1's schedule
    EXPECT_NEAR(poly(75), 0.03, 1e-12);
    EXPECT_DOUBLE_EQ(poly(100), 0.0);
}

TEST(TrainSchedule, WarmupThenAnotherSchedule) {
    const LrSchedule lr = linear_warmup(5, 0.2, multi_step_lr(0.1, {30}, 0.1));
    EXPECT_NEAR(lr(0), 0.02, 1e-12);  // 0.1 * 0.2
    EXPECT_NEAR(lr(1), 0.1 * (0.2 + 0.8 / 5), 1e-12);
    EXPECT_NEAR(lr(4), 0.1 * (0.2 + 0.8 * 4 / 5), 1e-12);
    EXPECT_NEAR(lr(5), 0.1, 1e-12);
    EXPECT_NEAR(lr(30), 0.01, 1e-12);  // milestones count from iteration 0
    const LrSchedule warm_cosine = linear_warmup(10, 0.0, cosine_lr(1.0, 110));
    EXPECT_DOUBLE_EQ(warm_cosine(0), 0.0);
    EXPECT_NEAR(warm_cosine(5), 0.5 * cosine_lr(1.0, 110)(10), 1e-12);
    EXPECT_NEAR(warm_cosine(60), cosine_lr(1.0, 110)(60), 1e-12);
}

TEST(TrainSchedule, BadArgumentsAreErrors) {
    EXPECT_THROW(step_lr(0.1, 0, 0.1), Error);
    EXPECT_THROW(multi_step_lr(0.1, {30, 30}, 0.1), Error);
    EXPECT_THROW(cosine_lr(0.1, 0), Error);
    EXPECT_THROW(linear_warmup(5, 1.5, constant_lr(0.1)), Error);
    EXPECT_THROW(constant_lr(-1.0), Error);
}

}  // namespace
}  // namespace dfp::train
