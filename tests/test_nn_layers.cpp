// Layer behaviour beyond gradients: BatchNorm train vs eval and its running statistics, Dropout's
// mask (rate, reproducibility, eval identity), pooling and LRN values by hand, the oneDNN LRN and
// pooling layers against their reference functions, the loss, and the Net's checks and error
// messages.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/isa.hpp"
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

Tensor random_tensor(Shape shape, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    Tensor t(std::move(shape));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    for (auto& x : t.data) x = d(rng);
    return t;
}

Tensor run(Layer& layer, std::vector<const Tensor*> srcs, const Context& ctx = {}) {
    Tensor dst;
    layer.forward(srcs, dst, ctx);
    return dst;
}

// Expects a dfp::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no dfp::Error (expected one naming \"" << needle << "\")";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

// The bias gradient: column sums of diff_dst, near a double reference, and the same bits at any
// thread count (fixed chunks of rows, summed in order), onto a non-zero start.
TEST(ColumnSums, NearDoubleAndTheSameAtAnyThreadCount) {
    std::mt19937 rng(17);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const auto& [rows, cols] :
         {std::pair<std::int64_t, std::int64_t>{1, 7}, {255, 3}, {257, 64}, {100003, 13}}) {
        std::vector<float> dd(std::size_t(rows * cols));
        for (float& x : dd) x = normal(rng);
        std::vector<float> start(static_cast<std::size_t>(cols));
        for (float& x : start) x = normal(rng);
        std::vector<std::vector<float>> got;
        for (const int threads : {1, 2, 3}) {
            const int before = omp_get_max_threads();
            omp_set_num_threads(threads);
            std::vector<float> sums = start;
            add_column_sums(sums.data(), dd.data(), rows, cols);
            omp_set_num_threads(before);
            got.push_back(sums);
        }
        EXPECT_EQ(got[0], got[1]) << rows << "x" << cols;
        EXPECT_EQ(got[0], got[2]) << rows << "x" << cols;
        for (std::int64_t j = 0; j < cols; ++j) {
            double want = start[std::size_t(j)];
            for (std::int64_t i = 0; i < rows; ++i) want += dd[std::size_t(i * cols + j)];
            EXPECT_NEAR(got[0][std::size_t(j)], want, 1e-5 * std::sqrt(double(rows)) + 1e-6)
                << rows << "x" << cols << " column " << j;
        }
    }
}

TEST(NnBatchNorm, TrainNormalisesAndUpdatesRunningStatistics) {
    constexpr std::size_t kC = 3;
    BatchNorm2d bn("bn", {.channels = kC, .momentum = 0.25f});
    const Tensor src = random_tensor({4, 3, 2, kC}, 1, 1.0f, 5.0f);  // mean far from 0
    const Tensor dst = run(bn, {&src}, {Mode::train, 0});
    const double m = double(src.numel() / kC);
    for (std::size_t c = 0; c < kC; ++c) {
        double mean = 0, var = 0, out_mean = 0, out_var = 0;
        for (std::size_t i = c; i < src.numel(); i += kC) mean += src.data[i] / m;
        for (std::size_t i = c; i < src.numel(); i += kC) {
            var += (src.data[i] - mean) * (src.data[i] - mean) / m;
            out_mean += dst.data[i] / m;
        }
        for (std::size_t i = c; i < src.numel(); i += kC)
            out_var += (dst.data[i] - out_mean) * (dst.data[i] - out_mean) / m;
        EXPECT_NEAR(out_mean, 0.0, 1e-6) << "channel " << c;
        EXPECT_NEAR(out_var, var / (var + 1e-5), 1e-5) << "channel " << c;
        // running = 0.75 * (0, 1) + 0.25 * (mean, unbiased var)
        EXPECT_NEAR(bn.running_mean()[c], 0.25 * mean, 1e-5);
        EXPECT_NEAR(bn.running_var()[c], 0.75 + 0.25 * var * m / (m - 1), 1e-5);
    }
}

TEST(NnBatchNorm, EvalUsesRunningStatisticsAndLeavesThemAlone) {
    BatchNorm2d bn("bn", {.channels = 2});
    bn.running_mean() = {0.5f, -1.0f};
    bn.running_var() = {4.0f, 0.25f};
    bn.gamma().value = {2.0f, 3.0f};
    bn.beta().value = {0.1f, -0.2f};
    const Tensor src = random_tensor({2, 2, 3, 2}, 2);
    const Tensor dst = run(bn, {&src}, {Mode::eval, 0});
    for (std::size_t i = 0; i < src.numel(); ++i) {
        const std::size_t c = i % 2;
        const float expected = bn.gamma().value[c] * (src.data[i] - bn.running_mean()[c]) /
                                   std::sqrt(bn.running_var()[c] + 1e-5f) +
                               bn.beta().value[c];
        EXPECT_NEAR(dst.data[i], expected, 1e-5f);
    }
    EXPECT_EQ(bn.running_mean(), (std::vector<float>{0.5f, -1.0f}));
    EXPECT_EQ(bn.running_var(), (std::vector<float>{4.0f, 0.25f}));
    // Train mode on the same data gives a different result: batch statistics.
    const Tensor train = run(bn, {&src}, {Mode::train, 0});
    EXPECT_GT(std::abs(train.data[0] - dst.data[0]), 1e-2f);
}

TEST(NnBatchNorm, TrainModeWithOneValuePerChannelIsAnError) {
    BatchNorm2d bn("bn_fc", {.channels = 4});
    const Tensor src({1, 1, 1, 4});
    expect_error([&] { run(bn, {&src}, {Mode::train, 0}); }, "batchnorm2d 'bn_fc'");
    EXPECT_NO_THROW(run(bn, {&src}, {Mode::eval, 0}));
}

// The fused ReLU of BatchNorm2d and Add against the layer followed by a separate Relu: the same
// bits forward and backward (the masks are the same expression, the sums the same order), in
// train and eval mode, on data with about half the outputs negative.
void expect_fused_relu_equals_separate(Layer& fused, Layer& plain, std::vector<Tensor> srcs,
                                       const Context& ctx, const char* what) {
    std::vector<const Tensor*> src_ptrs;
    for (const Tensor& t : srcs) src_ptrs.push_back(&t);
    Relu relu("relu");
    const Tensor y_fused = run(fused, src_ptrs, ctx);
    const Tensor y_plain = run(plain, src_ptrs, ctx);
    const Tensor y_relu = run(relu, {&y_plain}, ctx);
    ASSERT_EQ(y_fused.data, y_relu.data) << what << " forward";
    std::size_t zeros = 0;
    for (float y : y_fused.data) zeros += y == 0.0f;
    EXPECT_GT(zeros, y_fused.numel() / 4) << what << ": the ReLU must cut a good share";
    EXPECT_LT(zeros, y_fused.numel() * 3 / 4) << what;

    const Tensor diff_dst = random_tensor(y_fused.shape, 77);
    std::vector<Tensor> d_fused, d_plain;
    std::vector<Tensor*> p_fused, p_plain;
    for (const Tensor& t : srcs) {
        d_fused.push_back(random_tensor(t.shape, 78));  // backward adds: start non-zero
        d_plain.push_back(d_fused.back());
    }
    for (std::size_t i = 0; i < srcs.size(); ++i) {
        p_fused.push_back(&d_fused[i]);
        p_plain.push_back(&d_plain[i]);
    }
    for (Layer* l : {&fused, &plain})
        for (Param* p : l->params()) std::fill(p->grad.begin(), p->grad.end(), 0.5f);
    fused.backward(src_ptrs, y_fused, diff_dst, p_fused);
    Tensor diff_y(y_plain.shape);  // the separate ReLU adds into a zeroed gradient, as Net does
    const Tensor* relu_src[] = {&y_plain};
    Tensor* relu_diff[] = {&diff_y};
    relu.backward(relu_src, y_relu, diff_dst, relu_diff);
    plain.backward(src_ptrs, y_plain, diff_y, p_plain);
    for (std::size_t i = 0; i < srcs.size(); ++i)
        EXPECT_EQ(d_fused[i].data, d_plain[i].data) << what << " diff_src" << i;
    for (std::size_t i = 0; i < fused.params().size(); ++i)
        EXPECT_EQ(fused.params()[i]->grad, plain.params()[i]->grad) << what << " param " << i;
}

TEST(NnFusedRelu, BatchNormAndAddEqualTheLayerThenRelu) {
    for (Mode mode : {Mode::train, Mode::eval}) {
        BatchNorm2d fused("bn", {.channels = 5, .relu = true}), plain("bn", {.channels = 5});
        for (BatchNorm2d* bn : {&fused, &plain}) {
            bn->gamma().value = {1.5f, 0.5f, 1.0f, 2.0f, 0.75f};
            bn->beta().value = {0.1f, -0.2f, 0.0f, 0.3f, -0.1f};
            bn->running_mean() = {0.1f, -0.1f, 0.2f, 0.0f, 0.05f};
            bn->running_var() = {1.1f, 0.9f, 0.5f, 2.0f, 1.0f};
        }
        expect_fused_relu_equals_separate(fused, plain, {random_tensor({3, 4, 5, 5}, 70)},
                                          {mode, 0}, mode == Mode::train ? "bn train" : "bn eval");
    }
    Add fused("add", /*relu=*/true), plain("add");
    expect_fused_relu_equals_separate(
        fused, plain, {random_tensor({2, 3, 4, 6}, 71), random_tensor({2, 3, 4, 6}, 72)}, {},
        "add");
}

// Train mode runs on the batchnorm_train_* passes; the functions batchnorm_forward_train and
// batchnorm_backward are their reference (statistics in double). Outputs and every gradient agree
// to FP32 rounding of the statistics (the passes keep them in float), with and without the fused
// ReLU.
TEST(NnBatchNorm, TrainModeMatchesTheReferenceFunctions) {
    for (bool relu : {false, true}) {
        const std::int64_t c = 5;
        BatchNorm2d bn("bn", {.channels = c, .relu = relu});
        bn.gamma().value = {1.5f, 0.5f, 1.0f, 2.0f, 0.75f};
        bn.beta().value = {0.1f, -0.2f, 0.0f, 0.3f, -0.1f};
        const Tensor src = random_tensor({3, 7, 6, c}, 80, -2.0f, 3.0f);
        const std::int64_t m = std::int64_t(src.numel()) / c;
        const Tensor dst = run(bn, {&src}, {Mode::train, 0});
        std::vector<float> ref(src.numel()), mean(c), rstd(c);
        batchnorm_forward_train(ref.data(), mean.data(), rstd.data(), src.data.data(),
                                bn.gamma().value.data(), bn.beta().value.data(), m, c, 1e-5f, relu);
        std::size_t zeros = 0;
        for (std::size_t i = 0; i < ref.size(); ++i) {
            EXPECT_NEAR(dst.data[i], ref[i], 1e-5f * (1.0f + std::abs(ref[i]))) << "relu " << relu;
            zeros += ref[i] == 0.0f;
        }
        EXPECT_EQ(zeros > 0, relu);

        const Tensor diff_dst = random_tensor(dst.shape, 81);
        Tensor diff_src(src.shape);
        std::vector<float> ref_diff_src(src.numel()), ref_dgamma(c), ref_dbeta(c);
        bn.gamma().grad.assign(c, 0.0f);
        bn.beta().grad.assign(c, 0.0f);
        const Tensor* srcs[] = {&src};
        Tensor* diffs[] = {&diff_src};
        bn.backward(srcs, dst, diff_dst, diffs);
        batchnorm_backward(ref_diff_src.data(), ref_dgamma.data(), ref_dbeta.data(),
                           diff_dst.data.data(), src.data.data(), mean.data(), rstd.data(),
                           bn.gamma().value.data(), m, c, true, relu ? ref.data() : nullptr);
        for (std::size_t i = 0; i < ref_diff_src.size(); ++i)
            EXPECT_NEAR(diff_src.data[i], ref_diff_src[i],
                        1e-4f * (1.0f + std::abs(ref_diff_src[i])))
                << "relu " << relu;
        for (std::int64_t ch = 0; ch < c; ++ch) {
            EXPECT_NEAR(bn.gamma().grad[ch], ref_dgamma[ch],
                        1e-4f * (1.0f + std::abs(ref_dgamma[ch])));
            EXPECT_NEAR(bn.beta().grad[ch], ref_dbeta[ch],
                        1e-4f * (1.0f + std::abs(ref_dbeta[ch])));
        }
    }
}

// The train passes against the double reference on awkward sizes: channel counts that fill no
// vector, one row per thread, rows spread over several cache blocks and threads, and a mean far
// from zero (|mean| / std up to 3e4, where one-pass sums of squares around 0 lose every digit).
// diff_src is written, or added to an old value; the ReLU mask, recomputed in backward from src,
// must be that of the forward's output.
TEST(NnBatchNorm, TrainPassesMatchTheReferenceOnAwkwardSizes) {
    struct Case {
        std::int64_t m, c;
        float offset;
    };
    for (const Case& k : {Case{2, 1, 0.0f}, Case{3, 17, 5.0f}, Case{1000, 5, -3.0f},
                          Case{4099, 33, 1000.0f}, Case{70001, 3, 0.5f}}) {
        for (bool relu : {false, true}) {
            const std::int64_t m = k.m, c = k.c;
            const auto cs = static_cast<std::size_t>(c);
            const std::string what =
                std::to_string(m) + "x" + std::to_string(c) + " relu " + std::to_string(relu);
            std::mt19937 rng(unsigned(m * 7 + c));
            std::normal_distribution<float> normal;
            std::vector<float> src(cs * static_cast<std::size_t>(m)), gamma(cs), beta(cs);
            for (std::size_t i = 0; i < src.size(); ++i)
                src[i] = k.offset * float(1 + i % cs) + normal(rng);
            for (std::int64_t ch = 0; ch < c; ++ch)
                gamma[ch] = 0.5f + 0.1f * float(ch % 7), beta[ch] = 0.2f * float(ch % 3) - 0.2f;
            // Reference, then the passes as BatchNorm2d runs them.
            std::vector<float> ref(src.size()), ref_mean(cs), ref_rstd(cs);
            batchnorm_forward_train(ref.data(), ref_mean.data(), ref_rstd.data(), src.data(),
                                    gamma.data(), beta.data(), m, c, 1e-5f, relu);
            std::vector<float> mean(cs), var(cs), rstd(cs), scale(cs), dst(src.size());
            batchnorm_train_moments(src.data(), m, c, mean.data(), var.data());
            for (std::int64_t ch = 0; ch < c; ++ch) {
                const float ref_var = 1.0f / (ref_rstd[ch] * ref_rstd[ch]) - 1e-5f;
                EXPECT_NEAR(mean[ch], ref_mean[ch], 1e-6f * std::abs(ref_mean[ch]) + 1e-5f) << what;
                EXPECT_NEAR(var[ch], ref_var, 1e-4f * ref_var) << what;
                rstd[ch] = 1.0f / std::sqrt(var[ch] + 1e-5f);
                scale[ch] = gamma[ch] * rstd[ch];
            }
            batchnorm_train_normalise(dst.data(), src.data(), mean.data(), scale.data(),
                                      beta.data(), m, c, relu);
            for (std::size_t i = 0; i < dst.size(); ++i)
                ASSERT_NEAR(dst[i], ref[i], 1e-4f * (1.0f + std::abs(ref[i]))) << what << " " << i;

            std::vector<float> diff_dst(src.size());
            for (float& v : diff_dst) v = normal(rng);
            std::vector<float> ref_dx(src.size(), 0.0f), ref_dg(cs, 0.0f), ref_db(cs, 0.0f);
            // The reference masked by the passes' own output: the mask must be the forward's.
            batchnorm_backward(ref_dx.data(), ref_dg.data(), ref_db.data(), diff_dst.data(),
                               src.data(), mean.data(), rstd.data(), gamma.data(), m, c, true,
                               relu ? dst.data() : nullptr);
            for (bool accumulate : {false, true}) {
                const float old = accumulate ? 0.25f : 0.0f;
                std::vector<float> dx(src.size(), accumulate ? old : std::nanf("")), dg(cs, 1.0f),
                    db(cs, -1.0f);
                batchnorm_train_backward(dx.data(), accumulate, dg.data(), db.data(),
                                         diff_dst.data(), src.data(), mean.data(), rstd.data(),
                                         scale.data(), beta.data(), m, c, relu);
                for (std::int64_t ch = 0; ch < c; ++ch) {
                    EXPECT_NEAR(dg[ch] - 1.0f, ref_dg[ch], 1e-4f * (std::sqrt(float(m)) + 1.0f))
                        << what;
                    EXPECT_NEAR(db[ch] + 1.0f, ref_db[ch], 1e-4f * (std::sqrt(float(m)) + 1.0f))
                        << what;
                }
                for (std::size_t i = 0; i < dx.size(); ++i)
                    ASSERT_NEAR(dx[i] - old, ref_dx[i], 1e-4f * (1.0f + std::abs(ref_dx[i])))
                        << what << " accumulate " << accumulate << " " << i;
            }
        }
    }
}

// The AVX-512 sweep of MomentBlocks gives the portable one's bits (no FMA, the same order per
// channel): channel counts that fill no vector or several sweeps of four, one row and a full
// block, values with a far mean and a zero spread.
TEST(NnBatchNorm, Avx512DeviationSumsGiveThePortableBits) {
    if (active_isa() < Isa::avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    for (std::int64_t c : {1, 15, 16, 17, 63, 65, 200})
        for (std::int64_t rows : {1, 2, 37, 128}) {
            std::vector<float> x(std::size_t(rows * c));
            for (std::size_t i = 0; i < x.size(); ++i)
                x[i] = i % 5 == 0 ? 1.0f : 3e4f + normal(rng) * float(i % 7);
            std::vector<float> s1(std::size_t(c), -1.0f), s2 = s1, v1 = s1, v2 = s1;
            block_deviation_sums(x.data(), rows, c, s1.data(), s2.data());
            block_deviation_sums_avx512(x.data(), rows, c, v1.data(), v2.data());
            EXPECT_EQ(s1, v1) << c << " channels, " << rows << " rows";
            EXPECT_EQ(s2, v2) << c << " channels, " << rows << " rows";
        }
}

// A batch-norm with the residual join fused in (BatchNormConfig::residual) against the batch-norm
// and then Add: the same bits forward and backward, in train, eval and synchronised mode, with and
// without the ReLU, on sizes one thread and two threads run; each gradient written (fresh, NaN
// before) or added to, in every combination, and with the residual being the batch-norm's own
// input (one gradient buffer for both, added to twice, as Net::backward gives it).
TEST(NnBatchNorm, FusedResidualEqualsBatchNormThenAdd) {
    enum class Run { train, eval, synchronised };
    for (const Shape& shape : {Shape{3, 7, 5, 6}, Shape{2, 40, 40, 21}})
        for (Run mode : {Run::train, Run::eval, Run::synchronised})
            for (bool relu : {false, true})
                for (int fresh = 0; fresh < 5; ++fresh) {  // 4: the residual is the input
                    const std::int64_t c = std::int64_t(shape[3]);
                    const bool self = fresh == 4;
                    const std::string what =
                        shape_string(shape) + " mode " + std::to_string(int(mode)) + " relu " +
                        std::to_string(relu) + " fresh " + std::to_string(fresh);
                    BatchNorm2d fused("bn", {.channels = c, .relu = relu, .residual = true});
                    BatchNorm2d plain("bn", {.channels = c});
                    Add add("add", relu);
                    for (BatchNorm2d* bn : {&fused, &plain}) {
                        for (std::int64_t ch = 0; ch < c; ++ch) {
                            bn->gamma().value[ch] = 0.5f + 0.25f * float(ch % 5);
                            bn->beta().value[ch] = 0.1f * float(ch % 3) - 0.1f;
                            bn->running_mean()[ch] = 0.05f * float(ch % 4);
                            bn->running_var()[ch] = 0.5f + 0.1f * float(ch % 6);
                            bn->gamma().grad.assign(std::size_t(c), 0.5f);
                            bn->beta().grad.assign(std::size_t(c), -0.5f);
                        }
                        if (mode == Run::synchronised)  // one process: the sums stay
                            bn->set_sum_across_processes([](std::vector<double>&, bool) {});
                    }
                    const Context ctx{mode == Run::eval ? Mode::eval : Mode::train, 0};
                    const Tensor x = random_tensor(shape, 90, -2.0f, 3.0f);
                    const Tensor r = self ? x : random_tensor(shape, 91, -1.5f, 1.0f);
                    const Tensor y_fused = run(fused, {&x, &r}, ctx);
                    const Tensor y_bn = run(plain, {&x}, ctx);
                    const Tensor y = run(add, {&y_bn, &r}, ctx);
                    ASSERT_EQ(y_fused.data, y.data) << what;
                    if (relu) {
                        const auto zeros = std::count(y.data.begin(), y.data.end(), 0.0f);
                        EXPECT_GT(zeros, std::int64_t(y.numel() / 8)) << what;
                        EXPECT_LT(zeros, std::int64_t(y.numel() * 7 / 8)) << what;
                    }

                    // Written gradients start as NaN (any value read would show), added ones
                    // from an old value.
                    const Tensor dy = random_tensor(shape, 92);
                    const Tensor old = random_tensor(shape, 93);
                    Overwrite overwrite;
                    if (!self && (fresh & 1)) overwrite.set(0);
                    if (!self && (fresh & 2)) overwrite.set(1);
                    const auto start = [&](bool written) {
                        Tensor t = old;
                        if (written) std::fill(t.data.begin(), t.data.end(), std::nanf(""));
                        return t;
                    };
                    Tensor dx_fused = start(overwrite[0]), dr_fused = start(overwrite[1]);
                    Tensor dx = start(overwrite[0]), dr = start(overwrite[1]);
                    Tensor g_bn(shape);
                    {
                        const Tensor* srcs[] = {&x, &r};
                        Tensor* diffs[] = {&dx_fused, self ? &dx_fused : &dr_fused};
                        fused.backward_into(srcs, y_fused, dy, diffs, overwrite);
                    }
                    {
                        const Tensor* srcs[] = {&y_bn, &r};
                        Tensor* diffs[] = {&g_bn, self ? &dx : &dr};
                        Overwrite add_overwrite;
                        add_overwrite.set(0);
                        if (overwrite[1]) add_overwrite.set(1);
                        add.backward_into(srcs, y, dy, diffs, add_overwrite);
                        const Tensor* bn_src[] = {&x};
                        Tensor* bn_diff[] = {&dx};
                        Overwrite bn_overwrite;
                        if (overwrite[0]) bn_overwrite.set(0);
                        plain.backward_into(bn_src, y_bn, g_bn, bn_diff, bn_overwrite);
                    }
                    ASSERT_EQ(dx_fused.data, dx.data) << what << " diff_src";
                    if (!self) {
                        ASSERT_EQ(dr_fused.data, dr.data) << what << " diff_residual";
                    }
                    EXPECT_EQ(fused.gamma().grad, plain.gamma().grad) << what;
                    EXPECT_EQ(fused.beta().grad, plain.beta().grad) << what;
                }
}

TEST(NnBatchNorm, FusedResidualChecksItsInputs) {
    BatchNorm2d bn("bn_join", {.channels = 3, .relu = true, .residual = true});
    const Tensor x = random_tensor({2, 2, 2, 3}, 1), other = random_tensor({2, 2, 1, 3}, 2);
    expect_error([&] { run(bn, {&x}); }, "batchnorm2d 'bn_join'");
    expect_error([&] { run(bn, {&x, &other}); }, "residual");
}

// A NaN entering a batch-norm with a fused ReLU must not come out as zeros (max(0, NaN) may give
// either): the output is NaN, so the NaN check still names where it appeared.
TEST(NnBatchNorm, NanInputGivesNanOutputEvenWithTheFusedRelu) {
    BatchNorm2d bn("bn", {.channels = 3, .relu = true});
    Tensor src = random_tensor({2, 2, 2, 3}, 60);
    src.data[5] = std::numeric_limits<float>::quiet_NaN();
    const Tensor dst = run(bn, {&src}, {Mode::train, 0});
    for (float y : dst.data) EXPECT_TRUE(std::isnan(y));
}

TEST(NnDropout, RateScaleReproducibilityAndEval) {
    constexpr float kP = 0.25f;
    Dropout drop("drop", kP);
    Tensor src({1, 100, 100, 4});
    std::fill(src.data.begin(), src.data.end(), 1.0f);
    const Tensor a = run(drop, {&src}, {Mode::train, 7});
    std::size_t dropped = 0;
    for (float x : a.data) {
        if (x == 0.0f)
            ++dropped;
        else
            EXPECT_FLOAT_EQ(x, 1.0f / (1.0f - kP));
    }
    // 40000 Bernoulli(0.25) draws: standard deviation ~87, so +-500 is > 5 sigma.
    EXPECT_NEAR(double(dropped), kP * 40000.0, 500.0);
    EXPECT_EQ(run(drop, {&src}, {Mode::train, 7}).data, a.data);  // same iteration, same mask
    EXPECT_NE(run(drop, {&src}, {Mode::train, 8}).data, a.data);  // next iteration, new mask
    Dropout other("drop2", kP);
    EXPECT_NE(run(other, {&src}, {Mode::train, 7}).data, a.data);  // other layer, other mask
    EXPECT_EQ(run(drop, {&src}, {Mode::eval, 7}).data, src.data);
    expect_error([] { Dropout("bad_drop", 1.0f); }, "dropout 'bad_drop'");
}

TEST(NnPool, ValuesByHand) {
    // One 3x3 single-channel image 1..9; 2x2 windows, stride 2, ceil mode: windows clipped at
    // the right and bottom edges.
    Tensor src({1, 3, 3, 1});
    for (std::size_t i = 0; i < 9; ++i) src.data[i] = float(i + 1);
    MaxPool2d maxpool("max", {.kernel = 2, .stride = 2, .ceil_mode = true});
    AvgPool2d avgpool("avg", {.kernel = 2, .stride = 2, .ceil_mode = true});
    EXPECT_EQ(run(maxpool, {&src}).data, (UninitAlignedVector<float>{5, 6, 8, 9}));
    EXPECT_EQ(run(avgpool, {&src}).data, (UninitAlignedVector<float>{3, 4.5f, 7.5f, 9}));
    MaxPool2d floor_pool("max_floor", {.kernel = 2, .stride = 2});
    EXPECT_EQ(run(floor_pool, {&src}).shape, (Shape{1, 1, 1, 1}));
    // Padding 1 with a 3x3 window: exclude-padding average of the 2x2 corner.
    AvgPool2d padded("avg_pad", {.kernel = 3, .stride = 2, .pad = 1});
    EXPECT_FLOAT_EQ(run(padded, {&src}).data[0], (1 + 2 + 4 + 5) / 4.0f);
    GlobalAvgPool gap("gap");
    EXPECT_EQ(run(gap, {&src}).data, (UninitAlignedVector<float>{5}));
    expect_error([] { MaxPool2d("bad_pool", {.kernel = 2, .pad = 2}); }, "maxpool2d 'bad_pool'");
    const Tensor small({1, 1, 1, 1});
    expect_error([&] { run(avgpool, {&small}); }, "avgpool2d 'avg'");
}

// Values drawn from a few integers: many ties in every max window, and sums that are exact in
// any order.
Tensor integer_tensor(Shape shape, unsigned seed, int lo, int hi) {
    Tensor t(std::move(shape));
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> d(lo, hi);
    for (auto& x : t.data) x = float(d(rng));
    return t;
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
    double worst = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    return worst;
}

// Average pooling's layer and reference differ only by the order of their sums (at most 9 terms)
// and how they divide.
constexpr double kAvgPoolTolerance = 1e-6;

void expect_near_avgpool(std::span<const float> got, std::span<const float> ref) {
    for (std::size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(got[i], ref[i], kAvgPoolTolerance * (1.0 + std::abs(ref[i]))) << "at " << i;
}

// One row: the layer (oneDNN; max pooling on AVX-512 CPUs: dfptrain's rows, oneDNN under a lower
// DFP_ISA) against the reference functions, forward on random floats, then backward adding into
// a non-zero diff_src. Max pooling is compared bit for bit both ways; its backward runs on integer
// data (values -2..2, so most windows hold ties) and integer gradients (exact sums in any order):
// the layer must route each window's gradient to the element the reference picks (the first
// maximum in row-major window order), and lose none to the padding.
void expect_pool_matches_reference(bool max, const Pool2dConfig& config, const Shape& shape,
                                   unsigned seed) {
    MaxPool2d max_pool("max", config);
    AvgPool2d avg_pool("avg", config);
    Pool2d& pool = max ? static_cast<Pool2d&>(max_pool) : avg_pool;
    char what[80];
    std::snprintf(what, sizeof what, "%s k%ld s%ld p%ld %-5s %zux%zux%zux%zu", max ? "max" : "avg",
                  long(config.kernel), long(config.stride), long(config.pad),
                  config.ceil_mode ? "ceil" : "floor", shape[0], shape[1], shape[2], shape[3]);
    SCOPED_TRACE(what);
    const PoolGeometry g = pool.geometry(shape);
    const Shape dst_shape{shape[0], std::size_t(g.oh), std::size_t(g.ow), shape[3]};

    const Tensor src = random_tensor(shape, seed);
    const Tensor dst = run(pool, {&src});
    ASSERT_EQ(dst.shape, dst_shape);
    UninitAlignedVector<float> ref(dst.numel(), 0.0f);
    std::vector<std::int32_t> argmax(dst.numel());
    if (max) {
        maxpool_forward(ref.data(), argmax.data(), src.data.data(), g);
        ASSERT_EQ(dst.data, ref);
    } else {
        avgpool_forward(ref.data(), src.data.data(), g);
        expect_near_avgpool(dst.data, ref);
    }
    const double fwd_diff = max_abs_diff(dst.data, ref);
    ASSERT_EQ(run(pool, {&src}, {Mode::eval, 0}).data, dst.data);  // the same primitive

    const Tensor bsrc = max ? integer_tensor(shape, seed + 1, -2, 2) : src;
    const Tensor bdst = run(pool, {&bsrc});
    const Tensor diff_dst = integer_tensor(dst_shape, seed + 2, -8, 8);
    const Tensor start = integer_tensor(shape, seed + 3, -4, 4);
    Tensor diff_src = start, ref_diff_src = start;
    const Tensor* srcs[] = {&bsrc};
    Tensor* diffs[] = {&diff_src};
    pool.backward(srcs, bdst, diff_dst, diffs);
    if (max) {
        maxpool_forward(ref.data(), argmax.data(), bsrc.data.data(), g);
        ASSERT_EQ(bdst.data, ref);
        maxpool_backward(ref_diff_src.data.data(), argmax.data(), diff_dst.data.data(), g);
        ASSERT_EQ(diff_src.data, ref_diff_src.data);
        double added = 0.0, routed = 0.0;
        for (std::size_t i = 0; i < start.numel(); ++i) added += diff_src.data[i] - start.data[i];
        for (float d : diff_dst.data) routed += d;
        ASSERT_EQ(added, routed);
    } else {
        avgpool_backward(ref_diff_src.data.data(), diff_dst.data.data(), g);
        expect_near_avgpool(diff_src.data, ref_diff_src.data);
    }
    std::printf("pool layer %s fwd max|diff|=%.1e bwd max|diff|=%.1e PASS\n", what, fwd_diff,
                max_abs_diff(diff_src.data, ref_diff_src.data));
}

// Awkward shapes (channels 3, 17, 45, 67, 120: the AVX-512 rows' steps of 4 vectors of 16, full
// and with a masked last vector, and tails of 1, 2 and 3 vectors; H and W odd and even, as a 3x3
// stride-2 window's ceil mode matters only for even sizes), kernel 2 and 3, stride 1 and 2, pad 0
// and 1, ceil mode on and off, max and average: 160 rows.
TEST(NnPool, OnednnMatchesTheReferenceFunctions) {
    const Shape shapes[] = {
        {2, 7, 8, 3}, {2, 10, 5, 17}, {1, 9, 6, 45}, {2, 11, 12, 67}, {1, 5, 7, 120}};
    unsigned seed = 100;
    int ceil_adds_windows = 0;
    for (const Shape& shape : shapes)
        for (const std::int64_t kernel : {2, 3})
            for (const std::int64_t stride : {1, 2})
                for (const std::int64_t pad : {0, 1}) {
                    const PoolGeometry floor =
                        MaxPool2d("floor", {kernel, stride, pad, false}).geometry(shape);
                    const PoolGeometry ceil =
                        MaxPool2d("ceil", {kernel, stride, pad, true}).geometry(shape);
                    ceil_adds_windows += ceil.oh * ceil.ow > floor.oh * floor.ow;
                    for (const bool ceil_mode : {false, true})
                        for (const bool max : {true, false})
                            expect_pool_matches_reference(max, {kernel, stride, pad, ceil_mode},
                                                          shape, seed += 4);
                }
    EXPECT_GE(ceil_adds_windows, 10);  // of 40 configurations
}

// oneDNN's max pooling skips NaN and starts each window at lowest(); inputs holding NaN, -Inf or
// lowest() run on the reference instead (dfptrain's AVX-512 rows take the reference's rule for
// any input), so a NaN still reaches the NaN check and a window of -Inf still routes its gradient
// to an element of src. Same bits as the reference both ways.
TEST(NnPool, MaxPoolOfNanAndInfinityIsTheReference) {
    const Pool2dConfig config{.kernel = 3, .stride = 2, .pad = 1, .ceil_mode = true};
    const Shape shape{1, 6, 6, 70};  // a step of 4 vectors of 16 channels and a tail
    for (const float odd :
         {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
          std::numeric_limits<float>::lowest()}) {
        SCOPED_TRACE(odd);
        MaxPool2d pool("max", config);
        Tensor src = random_tensor(shape, 90);
        src.data[7 * 70 + 5] = odd;  // one pixel of channel 5
        for (std::size_t i = 66; i < src.numel(); i += 70) src.data[i] = odd;  // all of channel 66
        const Tensor dst = run(pool, {&src});
        const PoolGeometry g = pool.geometry(shape);
        std::vector<float> ref(dst.numel());
        std::vector<std::int32_t> argmax(dst.numel());
        maxpool_forward(ref.data(), argmax.data(), src.data.data(), g);
        ASSERT_EQ(std::memcmp(dst.data.data(), ref.data(), ref.size() * sizeof(float)), 0);
        EXPECT_EQ(std::isnan(odd), std::isnan(dst.data[5]));  // the window holding pixel 7
        const Tensor diff_dst = integer_tensor(dst.shape, 91, -8, 8);
        Tensor diff_src(shape), ref_diff_src(shape);
        const Tensor* srcs[] = {&src};
        Tensor* diffs[] = {&diff_src};
        pool.backward(srcs, dst, diff_dst, diffs);
        maxpool_backward(ref_diff_src.data.data(), argmax.data(), diff_dst.data.data(), g);
        EXPECT_EQ(diff_src.data, ref_diff_src.data);
        // Into a fresh buffer (NaN-filled, so a value kept from it shows).
        std::fill(diff_src.data.begin(), diff_src.data.end(),
                  std::numeric_limits<float>::quiet_NaN());
        Overwrite fresh;
        fresh.set(0);
        pool.backward_into(srcs, dst, diff_dst, diffs, fresh);
        EXPECT_EQ(diff_src.data, ref_diff_src.data);
    }
}

TEST(NnLrn, ValueByHand) {
    Lrn lrn("lrn", {.size = 3, .alpha = 0.3f, .beta = 0.5f, .k = 2.0f});
    Tensor src({1, 1, 1, 3});
    src.data = {1.0f, 2.0f, 3.0f};
    const Tensor dst = run(lrn, {&src});
    // channel 0 sees channels 0,1; channel 1 sees 0,1,2; channel 2 sees 1,2. alpha / size = 0.1.
    EXPECT_FLOAT_EQ(dst.data[0], 1.0f / std::sqrt(2.0f + 0.1f * 5.0f));
    EXPECT_FLOAT_EQ(dst.data[1], 2.0f / std::sqrt(2.0f + 0.1f * 14.0f));
    EXPECT_FLOAT_EQ(dst.data[2], 3.0f / std::sqrt(2.0f + 0.1f * 13.0f));
    expect_error([] { Lrn("even_lrn", {.size = 4}); }, "lrn 'even_lrn'");
}

// max |a - ref| / max |ref|, after checking that at least half of ref is non-zero.
double relative_error(std::span<const float> a, std::span<const float> ref) {
    EXPECT_EQ(a.size(), ref.size());
    const auto nonzero = std::count_if(ref.begin(), ref.end(), [](float x) { return x != 0.0f; });
    EXPECT_GE(2 * nonzero, std::ptrdiff_t(ref.size())) << "reference mostly zero";
    double max_diff = 0.0, max_ref = 0.0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        max_diff = std::max(max_diff, std::abs(double(a[i]) - ref[i]));
        max_ref = std::max(max_ref, std::abs(double(ref[i])));
    }
    return max_diff / max_ref;
}

// The layer runs lrn_forward_avx512 and lrn_backward_avx512 for beta 0.75 on a CPU with AVX-512,
// else oneDNN; lrn_forward and lrn_backward are their reference. Random data on channel counts
// below one vector of 16 (1, 7), of one (16), past whole vectors (37, 67) and of four (64), every
// odd window up to 5 and one wide enough that oneDNN 2.6 picks its reference kernels (no
// workspace), k = 1 and 2, a small and a large alpha: src is drawn with amplitude
// 2 / sqrt(alpha), so alpha x^2 ~ 1.3 and the normalisation term is of the order of k; one tensor
// large enough that the passes run on several threads. Both modes: on oneDNN an eval-mode forward
// runs its inference LRN and leaves no workspace, so backward runs the reference.
// Tolerance: max |layer - ref| <= kLrnRelTol max |ref| per tensor. Both are FP32 and differ by
// the order of window sums of at most `size` terms and by powf against oneDNN's power or two
// square roots: a few ulps; measured <= 4.2e-7 here (oneDNN's AVX-512, AVX2 and SSE4.1 kernels
// and the AVX-512 path alike). Passing alpha * size to oneDNN (the other convention) is off by
// ~0.5. Backward adds to diff_src (Layer::backward) and writes it (backward_into, over garbage).
constexpr double kLrnRelTol = 2e-6;
constexpr std::int64_t kLrnRefOnlySize = 33;  // oneDNN 2.6's JIT LRN takes sizes up to 15

// One row per case; false when a tensor is off.
bool lrn_matches_reference(std::int64_t c, const LrnConfig& cfg, Mode mode, unsigned seed,
                           std::size_t h = 3, std::size_t w = 5) {
    Lrn lrn("lrn", cfg);
    EXPECT_EQ(lrn.runs_avx512(), cfg.beta == 0.75f && active_isa() >= Isa::avx512);
    const float amplitude = 2.0f / std::sqrt(cfg.alpha);
    const Tensor src = random_tensor({2, h, w, std::size_t(c)}, seed, -amplitude, amplitude);
    const std::int64_t m = std::int64_t(src.numel()) / c;
    const Tensor dst = run(lrn, {&src}, {mode, 0});
    std::vector<float> ref(src.numel());
    lrn_forward(ref.data(), src.data.data(), m, c, cfg);

    // Both add: diff_src starts at the same random values in both.
    const Tensor diff_dst = random_tensor(dst.shape, seed + 1);
    Tensor diff_src = random_tensor(src.shape, seed + 2);
    const std::vector<float> start(diff_src.data.begin(), diff_src.data.end());
    std::vector<float> ref_diff_src = start;
    const Tensor* srcs[] = {&src};
    Tensor* diffs[] = {&diff_src};
    lrn.backward(srcs, dst, diff_dst, diffs);
    lrn_backward(ref_diff_src.data(), diff_dst.data.data(), ref.data(), src.data.data(), m, c, cfg);
    Tensor written = random_tensor(src.shape, seed + 3, 1e30f, 2e30f);
    Tensor* written_diffs[] = {&written};
    Overwrite fresh;
    fresh.set(0);
    lrn.backward_into(srcs, dst, diff_dst, written_diffs, fresh);
    // Compared on what each added, so that the start values cannot hide a small error.
    for (std::size_t i = 0; i < start.size(); ++i) {
        diff_src.data[i] -= start[i];
        ref_diff_src[i] -= start[i];
    }

    const double e_fwd = relative_error(dst.data, ref);
    const double e_bwd = relative_error(diff_src.data, ref_diff_src);
    // The written gradient is the added one, whatever diff_src held.
    std::vector<float> ref_written(ref_diff_src.size(), 0.0f);
    lrn_backward(ref_written.data(), diff_dst.data.data(), ref.data(), src.data.data(), m, c, cfg);
    const double e_write = relative_error(written.data, ref_written);
    const bool pass = e_fwd <= kLrnRelTol && e_bwd <= kLrnRelTol && e_write <= kLrnRelTol;
    std::printf(
        "lrn f32 %s %s 2x%zux%zux%ld size %ld k %g alpha %g beta %g  fwd %.1e bwd %.1e "
        "written %.1e  %s\n",
        lrn.runs_avx512() ? "avx512" : "onednn", mode == Mode::train ? "train" : "eval ", h, w,
        long(c), long(cfg.size), double(cfg.k), double(cfg.alpha), double(cfg.beta), e_fwd, e_bwd,
        e_write, pass ? "PASS" : "FAIL");
    return pass;
}

// Beta 0.75 takes the AVX-512 path where the CPU has it (channel counts below, at and above one
// vector and a window wider than the channels); beta 0.5 and 1 take oneDNN.
TEST(NnLrn, LayerMatchesTheReferenceFunctions) {
    const std::int64_t sizes[] = {1, 3, 5, kLrnRefOnlySize};
    unsigned seed = 200;
    for (float beta : {0.75f, 0.5f, 1.0f})
        for (std::int64_t c : {1, 7, 16, 37, 64, 67})
            for (std::int64_t size : sizes)
                for (float k : {1.0f, 2.0f})
                    for (float alpha : {1e-4f, 2.0f})
                        for (Mode mode : {Mode::train, Mode::eval}) {
                            if (beta != 0.75f && (c == 1 || c == 16 || k == 2.0f)) continue;
                            const LrnConfig cfg{.size = size, .alpha = alpha, .beta = beta, .k = k};
                            EXPECT_TRUE(lrn_matches_reference(c, cfg, mode, seed += 4));
                        }
    // 2 x 16 x 16 x 67 = 34304 values: past kMinParallelElements, so on every thread.
    for (float beta : {0.75f, 0.5f})
        EXPECT_TRUE(lrn_matches_reference(67, {.size = 5, .alpha = 1e-4f, .beta = beta},
                                          Mode::train, seed += 4, 16, 16));
}

TEST(NnJoin, AddAndConcatShapesAndErrors) {
    const Tensor a = random_tensor({2, 2, 2, 3}, 3), b = random_tensor({2, 2, 2, 5}, 4);
    Concat cat("cat");
    const Tensor ab = run(cat, {&a, &b});
    EXPECT_EQ(ab.shape, (Shape{2, 2, 2, 8}));
    EXPECT_EQ(ab.data[8 + 2], a.data[3 + 2]);  // pixel 1, channel 2 comes from a
    EXPECT_EQ(ab.data[8 + 4], b.data[5 + 1]);  // pixel 1, channel 4 is b's channel 1
    Add add("add");
    expect_error([&] { run(add, {&a, &b}); }, "add 'add'");
    expect_error([&] { run(add, {&a}); }, "at least 2");
    const Tensor c = random_tensor({2, 3, 2, 3}, 5);
    expect_error([&] { run(cat, {&a, &c}); }, "concat 'cat'");
}

TEST(NnLoss, SoftmaxCrossEntropyValuesAndErrors) {
    Tensor logits({2, 3});
    logits.data = {0.0f, 0.0f, 0.0f, 1000.0f, 0.0f, -1000.0f};  // uniform; extreme but finite
    const std::vector<int> labels = {1, 0};
    Tensor dlogits;
    const float loss = softmax_cross_entropy(logits, labels, dlogits);
    EXPECT_NEAR(loss, std::log(3.0) / 2.0, 1e-6);
    EXPECT_NEAR(dlogits.data[1], (1.0 / 3.0 - 1.0) / 2.0, 1e-7);
    EXPECT_NEAR(dlogits.data[3], 0.0, 1e-7);
    EXPECT_EQ(count_correct(logits, labels), 1);  // sample 0 ties: first maximum is class 0
    expect_error(
        [&] {
            softmax_cross_entropy(logits, std::vector<int>{1, 3}, dlogits);
        },
        "label 3 of sample 1");
    expect_error([&] { softmax_cross_entropy(logits, std::vector<int>{1}, dlogits); },
                 "do not match 1 labels");
}

TEST(NnNet, BuildErrorsAndShapeErrorsNameTheLayer) {
    Net net;
    const int c1 =
        net.add<Conv2d>({Net::kInput}, "conv1", Conv2dConfig{.in_channels = 3, .out_channels = 4});
    expect_error([&] { net.add<Relu>({c1 + 1}, "relu"); }, "names input node 2");
    expect_error([&] { net.add<Relu>({c1}, "conv1"); }, "'conv1' is already in use");
    const int fc = net.add<Linear>({c1}, "fc", LinearConfig{.in_features = 64, .out_features = 2});
    EXPECT_EQ(fc, net.output());
    EXPECT_EQ(net.params().size(), 4u);
    EXPECT_EQ(net.params()[2]->name, "fc.weight");
    // 4x4x3 fits (4*4*4 = 64 features), 5x5x3 does not: the error names the layer at fault.
    EXPECT_EQ(net.forward(Tensor({2, 4, 4, 3}), {}).shape, (Shape{2, 2}));
    expect_error([&] { net.forward(Tensor({2, 5, 5, 3}), {}); }, "linear 'fc'");
    expect_error([&] { net.forward(Tensor({2, 4, 4, 2}), {}); }, "conv2d 'conv1'");
    net.forward(Tensor({2, 4, 4, 3}), {});
    expect_error([&] { net.backward(Tensor({2, 3})); }, "Net::backward");
}

TEST(NnNet, GradientsAccumulateUntilZeroed) {
    Net net;
    net.add<Linear>({Net::kInput}, "fc", LinearConfig{.in_features = 4, .out_features = 2});
    const Tensor src = random_tensor({3, 4}, 6), diff = random_tensor({3, 2}, 7);
    net.forward(src, {});
    net.zero_grad();
    net.backward(diff);
    const std::vector<float> once = net.params()[0]->grad;
    net.backward(diff);
    for (std::size_t i = 0; i < once.size(); ++i)
        EXPECT_FLOAT_EQ(net.params()[0]->grad[i], 2.0f * once[i]);
    // zero_grad is lazy: the next backward stores (the same bits as adding to zeros) without
    // reading what grad held, and settle_grad writes the zeros out.
    std::fill(net.params()[0]->grad.begin(), net.params()[0]->grad.end(),
              std::numeric_limits<float>::quiet_NaN());
    net.zero_grad();
    net.backward(diff);
    EXPECT_EQ(net.params()[0]->grad, once);
    net.zero_grad();
    for (float g : net.params()[0]->settle_grad()) EXPECT_EQ(g, 0.0f);
    net.backward(diff);
    EXPECT_EQ(net.params()[0]->grad, once);
}

// Gradients live only from their last consumer's backward to their own: a chain holds two at a
// time, a residual block three, and a second step reuses the same buffers.
TEST(NnNet, GradientBuffersAreReusedAlongTheChainAndAcrossSteps) {
    Net net;
    int x = Net::kInput;
    for (int i = 0; i < 10; ++i) x = net.add<Relu>({x}, "relu" + std::to_string(i));
    const int skip = x;
    x = net.add<Relu>({x}, "branch");
    x = net.add<Add>({x, skip}, "join");
    const Tensor src = random_tensor({2, 3, 4, 5}, 90);
    const Tensor diff = random_tensor({2, 3, 4, 5}, 91);
    for (int step = 0; step < 2; ++step) {
        net.forward(src, {});
        net.backward(diff);
        EXPECT_EQ(net.gradient_buffers(), 3u) << "step " << step;
    }
}

// backward_into with every diff_src marked fresh (and filled with NaN, so a value read or kept
// from it shows) gives exactly what backward adds to zeros, for the layers that override it
// (every lowering of the integer convolution, oneDNN and reference batch-norm, the fused ReLUs,
// max and average pooling) and for the default (Linear), parameter gradients included.
TEST(NnLayers, BackwardIntoWritesWhatBackwardAddsToZero) {
    const auto conv = [](const char* name, int kernel, int stride, const char* precision) {
        auto layer = std::make_unique<Conv2d>(name, Conv2dConfig{.in_channels = 6,
                                                                 .out_channels = 5,
                                                                 .kernel = kernel,
                                                                 .stride = stride,
                                                                 .pad = kernel / 2});
        layer->set_precision(precision::Policy::parse(precision).for_layer(name, 1, 3));
        return layer;
    };
    struct Case {
        std::unique_ptr<Layer> layer;
        std::vector<Shape> srcs;
        Context ctx = {};
    };
    const Shape map{2, 7, 5, 6};
    std::vector<Case> cases;
    for (const char* p : {"fp32", "dfp16", "dfp8", "dfp8,all.granularity=block"}) {
        cases.push_back({conv("c1x1", 1, 1, p), {map}});
        cases.push_back({conv("c3x3", 3, 1, p), {map}});
        cases.push_back({conv("c3x3s2", 3, 2, p), {map}});
        cases.push_back({conv("c1x1s2", 1, 2, p), {map}});  // reaches a quarter of the pixels
    }
    cases.push_back({std::make_unique<BatchNorm2d>("bn", BatchNormConfig{.channels = 6}), {map}});
    cases.push_back(
        {std::make_unique<BatchNorm2d>("bn_relu", BatchNormConfig{.channels = 6, .relu = true}),
         {map}});
    cases.push_back({std::make_unique<BatchNorm2d>("bn_eval", BatchNormConfig{.channels = 6}),
                     {map},
                     {Mode::eval, 0}});
    cases.push_back({std::make_unique<Relu>("relu"), {map}});
    cases.push_back({std::make_unique<Lrn>("lrn", LrnConfig{.alpha = 0.5f}), {map}});
    cases.push_back({std::make_unique<Lrn>("lrn1", LrnConfig{.size = 1, .alpha = 0.5f}), {map}});
    cases.push_back({std::make_unique<Add>("add"), {map, map, map}});
    cases.push_back({std::make_unique<Add>("add_relu", true), {map, map}});
    cases.push_back({std::make_unique<Concat>("cat"), {map, {2, 7, 5, 3}}});
    cases.push_back(
        {std::make_unique<Linear>("fc", LinearConfig{.in_features = 7 * 5 * 6, .out_features = 4}),
         {map}});
    cases.push_back({std::make_unique<MaxPool2d>("pool", Pool2dConfig{.ceil_mode = true}), {map}});
    cases.push_back(
        {std::make_unique<MaxPool2d>(
             "pool3", Pool2dConfig{.kernel = 3, .stride = 2, .pad = 1, .ceil_mode = true}),
         {map}});
    cases.push_back(
        {std::make_unique<AvgPool2d>("avgpool", Pool2dConfig{.ceil_mode = true}), {map}});
    unsigned seed = 200;
    for (Case& c : cases) {
        Layer& layer = *c.layer;
        std::vector<Tensor> srcs;
        for (const Shape& s : c.srcs) srcs.push_back(random_tensor(s, ++seed));
        std::vector<const Tensor*> src_ptrs;
        for (const Tensor& t : srcs) src_ptrs.push_back(&t);
        Tensor dst;
        layer.forward(src_ptrs, dst, c.ctx);
        const Tensor diff_dst = random_tensor(dst.shape, ++seed);
        const auto gradients = [&](bool into) {
            for (Param* p : layer.params()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
            std::vector<Tensor> diff(srcs.size());
            std::vector<Tensor*> diff_ptrs;
            Overwrite fresh;
            for (std::size_t i = 0; i < srcs.size(); ++i) {
                diff[i] = Tensor(srcs[i].shape);
                std::fill(diff[i].data.begin(), diff[i].data.end(),
                          into ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
                diff_ptrs.push_back(&diff[i]);
                fresh.set(i);
            }
            if (into)
                layer.backward_into(src_ptrs, dst, diff_dst, diff_ptrs, fresh);
            else
                layer.backward(src_ptrs, dst, diff_dst, diff_ptrs);
            std::vector<std::vector<float>> out;
            for (const Tensor& t : diff) out.emplace_back(t.data.begin(), t.data.end());
            for (Param* p : layer.params()) out.push_back(p->grad);
            return out;
        };
        const auto added = gradients(false), written = gradients(true);
        ASSERT_EQ(added.size(), written.size());
        for (std::size_t i = 0; i < added.size(); ++i)
            EXPECT_EQ(added[i], written[i])
                << layer.name() << " "
                << (layer.precision() ? precision::compute_name(layer.precision()->compute) : "")
                << " gradient " << i;
    }
}

// ReLU on a tensor large enough for the streaming-store path (16 MiB and 3 values: its tail too):
// forward and both backward modes equal the formula, NaN passing forward and -0 kept.
TEST(NnLayers, ReluOnATensorBeyondTheCachesMatchesTheFormula) {
    const Shape shape{(std::size_t{1} << 22) + 3};
    Tensor x = random_tensor(shape, 7);
    x.data[5] = std::numeric_limits<float>::quiet_NaN();
    x.data[6] = -0.0f;
    x.data[x.numel() - 1] = -2.0f;
    Relu relu("relu");
    const std::vector<const Tensor*> srcs{&x};
    Tensor y;
    relu.forward(srcs, y, {});
    bool forward_ok = true;
    for (std::size_t e = 0; e < x.numel(); ++e) {
        const float want = x.data[e] < 0.0f ? 0.0f : x.data[e];
        forward_ok &= std::memcmp(&y.data[e], &want, sizeof(float)) == 0;
    }
    EXPECT_TRUE(forward_ok);
    const Tensor dy = random_tensor(shape, 8);
    for (const bool fresh : {true, false}) {
        Tensor dx = random_tensor(shape, 9);
        const Tensor before = dx;
        Overwrite overwrite;
        if (fresh) overwrite.set(0);
        const std::vector<Tensor*> diff{&dx};
        relu.backward_into(srcs, y, dy, diff, overwrite);
        bool ok = true;
        for (std::size_t e = 0; e < x.numel(); ++e) {
            const float g = y.data[e] > 0.0f ? dy.data[e] : 0.0f;
            ok &= dx.data[e] == (fresh ? g : before.data[e] + g);
        }
        EXPECT_TRUE(ok) << (fresh ? "written" : "added");
    }
}

// The two-input Add (the residual join) writes or adds each gradient as its Overwrite bit says, in
// one pass for both: every mask, with and without the fused ReLU, against the formula; forward
// too. The large map (16 MiB and 3 values) takes the streaming-store path and its tail.
TEST(NnLayers, TwoInputAddBackwardWritesOrAddsEachGradient) {
    for (const Shape& map : {Shape{3, 5, 7, 9}, Shape{(std::size_t{1} << 22) + 3}})
        for (const bool relu : {false, true}) {
            Add add("add", relu);
            const Tensor a = random_tensor(map, 1), b = random_tensor(map, 2);
            const std::vector<const Tensor*> srcs{&a, &b};
            Tensor dst;
            add.forward(srcs, dst, {});
            bool forward_ok = true;
            for (std::size_t e = 0; e < dst.numel(); ++e) {
                const float sum = a.data[e] + b.data[e];
                forward_ok &= dst.data[e] == (relu && sum < 0.0f ? 0.0f : sum);
            }
            EXPECT_TRUE(forward_ok) << "relu " << relu << " forward, " << dst.numel() << " values";
            const Tensor diff_dst = random_tensor(map, 3);
            for (unsigned mask = 0; mask < 4; ++mask) {
                Overwrite overwrite;
                std::vector<Tensor> diff{random_tensor(map, 4), random_tensor(map, 5)};
                const std::vector<Tensor> before = diff;
                for (int i = 0; i < 2; ++i)
                    if (mask >> i & 1) overwrite.set(std::size_t(i));
                const std::vector<Tensor*> diff_srcs{&diff[0], &diff[1]};
                add.backward_into(srcs, dst, diff_dst, diff_srcs, overwrite);
                for (int i = 0; i < 2; ++i) {
                    bool ok = true;
                    for (std::size_t e = 0; e < dst.numel(); ++e) {
                        const float g = relu && !(dst.data[e] > 0.0f) ? 0.0f : diff_dst.data[e];
                        ok &= diff[i].data[e] == ((mask >> i & 1) ? g : before[i].data[e] + g);
                    }
                    EXPECT_TRUE(ok) << "relu " << relu << " mask " << mask << " input " << i << ", "
                                    << dst.numel() << " values";
                }
            }
        }
}

// Net::backward hands pooled gradient buffers to their first writer without zeroing them: after
// a backward that leaves NaN in every pooled buffer, a second one must give exactly the gradients
// of a fresh Net. The DAG has fan-out, a node fed twice to one Add, a dead branch, a 1x1 stride-2
// convolution (it writes only a quarter of its diff_src's pixels) and a Concat of 65 inputs (more
// than an Overwrite mask marks). The parameter gradients hold NaN too when zero_grad clears them
// (lazily): every layer must store its first gradient, in every precision, not add to them.
TEST(NnNet, StaleGradientBuffersNeverLeakIntoTheNextBackward) {
    const auto build = [](Net& net) {
        const int c1 = net.add<Conv2d>(
            {Net::kInput}, "c1",
            Conv2dConfig{.in_channels = 3, .out_channels = 4, .kernel = 3, .pad = 1});
        const int bn =
            net.add<BatchNorm2d>({c1}, "bn", BatchNormConfig{.channels = 4, .relu = true});
        const int twice = net.add<Add>({bn, bn}, "twice");
        net.add<Relu>({twice}, "dead");  // consumed by nobody
        const int down = net.add<Conv2d>(
            {twice}, "down", Conv2dConfig{.in_channels = 4, .out_channels = 2, .stride = 2});
        std::vector<int> branches;
        for (int b = 0; b < 65; ++b) {
            std::string name = "b";
            name += std::to_string(b);
            branches.push_back(net.add<Conv2d>(
                {down}, name, Conv2dConfig{.in_channels = 2, .out_channels = 1, .bias = false}));
        }
        const int cat = net.add<Concat>(branches, "cat");
        const int pool = net.add<MaxPool2d>({cat}, "pool", Pool2dConfig{.ceil_mode = true});
        net.add<Linear>({pool}, "fc", LinearConfig{.in_features = 2 * 2 * 65, .out_features = 3});
    };
    for (const char* precision : {"fp32", "dfp16", "dfp8", "dfp8,all.granularity=block"}) {
        Net reused, fresh;
        build(reused);
        build(fresh);
        const Tensor src = random_tensor({2, 7, 7, 3}, 70);
        const Tensor& out = reused.forward(src, {});
        Tensor poison(out.shape);
        std::fill(poison.data.begin(), poison.data.end(), std::numeric_limits<float>::quiet_NaN());
        reused.backward(poison);  // in FP32 (DFP16 refuses NaN): every pooled buffer holds NaN
        reused.apply_precision(precision::Policy::parse(precision));
        fresh.apply_precision(precision::Policy::parse(precision));
        const Tensor probe = random_tensor(out.shape, 71);
        reused.zero_grad();
        reused.forward(src, {});
        reused.backward(probe);
        fresh.zero_grad();
        fresh.forward(src, {});
        fresh.backward(probe);
        const std::vector<Param*> a = reused.params(), b = fresh.params();
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i)
            EXPECT_EQ(a[i]->grad, b[i]->grad) << precision << " " << a[i]->name;
    }
}

TEST(NnNet, FirstNonFiniteLayer) {
    Net net;
    const int r = net.add<Relu>({Net::kInput}, "relu");
    net.add<Linear>({r}, "fc", LinearConfig{.in_features = 2, .out_features = 1});
    Tensor src({1, 2});
    src.data = {1.0f, 2.0f};
    net.forward(src, {});
    EXPECT_EQ(net.first_nonfinite_layer(), "");
    net.params()[0]->value[1] = std::numeric_limits<float>::infinity();
    net.forward(src, {});
    EXPECT_EQ(net.first_nonfinite_layer(), "fc");
}

// Tensor's storage leaves elements unwritten on data.resize() (Net's gradient pool relies on it),
// but its constructor and resize() still zero what they add, even within the old capacity.
TEST(Tensor, ConstructorAndResizeZeroWhatTheyAdd) {
    Tensor t({3, 5});
    for (float v : t.data) ASSERT_EQ(v, 0.0f);
    std::fill(t.data.begin(), t.data.end(), 7.0f);
    t.resize({2, 2});
    t.resize({4, 4});  // regrows over the 7s it dropped
    for (std::size_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.data[i], i < 4 ? 7.0f : 0.0f) << i;
}

}  // namespace
}  // namespace dfp::nn
