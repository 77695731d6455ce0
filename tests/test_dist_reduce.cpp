// The data-parallel arithmetic without MPI: shards of the epoch order, and both gradient exchanges
// run for N simulated ranks (alltoall and allgather become copies), against the exact average.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "base/error.hpp"
#include "dist/data_parallel.hpp"
#include "dist/grad_exchange.hpp"
#include "dist/reduce.hpp"
#include "format/quantize_kernels.hpp"
#include "nn/norm.hpp"

namespace dfp::dist {
namespace {

TEST(DistShard, EveryRankTakesItsShareOfEachGlobalBatchInOrder) {
    std::vector<std::int64_t> order(103);
    std::iota(order.rbegin(), order.rend(), 0);  // any permutation will do
    for (int ranks : {1, 2, 3, 8})
        for (std::int64_t batch : {8, 24, 200}) {
            std::vector<std::vector<std::int64_t>> shards;
            for (int r = 0; r < ranks; ++r) shards.push_back(shard_order(order, batch, ranks, r));
            // Walking the global batches and taking each rank's share in rank order gives the
            // global order back.
            std::vector<std::int64_t> joined;
            std::vector<std::size_t> pos(std::size_t(ranks), 0);
            for (std::int64_t first = 0; first < 103; first += batch) {
                const std::int64_t b = std::min<std::int64_t>(batch, 103 - first);
                std::int64_t total = 0;
                for (int r = 0; r < ranks; ++r) {
                    const std::int64_t n = shard_size(b, ranks, r);
                    EXPECT_LE(n, (b + ranks - 1) / ranks);
                    total += n;
                    for (std::int64_t i = 0; i < n; ++i) joined.push_back(shards[r][pos[r]++]);
                }
                EXPECT_EQ(total, b);
            }
            EXPECT_EQ(joined, order) << "ranks " << ranks << " batch " << batch;
        }
}

// One exchange for N simulated ranks: grads[r] is rank r's (weighted) gradient; returns what every
// rank ends with. Follows GradientExchange's steps with the same functions.
std::vector<float> exchange_dfp16(const std::vector<std::vector<float>>& grads) {
    const int ranks = static_cast<int>(grads.size());
    const std::size_t n = grads[0].size(), chunk = (n + ranks - 1) / ranks;
    std::uint32_t max_bits = 0;
    for (const auto& g : grads) max_bits = std::max(max_bits, max_abs_bits(g));
    const int e = shared_exponent_of(max_bits);
    std::vector<std::vector<std::int16_t>> sent(static_cast<std::size_t>(ranks),
                                                std::vector<std::int16_t>(chunk * ranks, 0));
    for (int r = 0; r < ranks; ++r) quantize_s16(grads[r], e, std::span(sent[r]).first(n));
    std::vector<std::int16_t> gathered(chunk * ranks);
    for (int owner = 0; owner < ranks; ++owner) {
        std::vector<std::int16_t> recv;  // the alltoall: chunk `owner` of every rank
        for (int r = 0; r < ranks; ++r)
            recv.insert(recv.end(), sent[r].begin() + owner * chunk,
                        sent[r].begin() + (owner + 1) * chunk);
        average_chunks_s16(recv, ranks, std::span(gathered).subspan(owner * chunk, chunk));
    }
    std::vector<float> result(n);
    dequantize_s16(std::span(gathered).first(n), e, result);
    return result;
}

TEST(DistReduce, Dfp16ExchangeStaysWithinItsBoundOfTheExactAverage) {
    std::mt19937 rng(7);
    std::student_t_distribution<float> heavy(3.0f);  // gradients have outliers
    for (int ranks : {1, 2, 3, 8, 64})
        for (std::size_t n : {std::size_t{1}, std::size_t{37}, std::size_t{100000}}) {
            std::vector<std::vector<float>> grads(static_cast<std::size_t>(ranks),
                                                  std::vector<float>(n));
            float max_abs = 0;
            for (auto& g : grads)
                for (float& x : g) {
                    x = 1e-3f * heavy(rng);
                    max_abs = std::max(max_abs, std::fabs(x));
                }
            const std::vector<float> got = exchange_dfp16(grads);
            // The bound of reduce.hpp: 1.5 x 2^E with E = floor(log2 max) - 14.
            const double bound = 1.5 * std::ldexp(1.0, std::ilogb(max_abs) - 14);
            double worst = 0;
            for (std::size_t i = 0; i < n; ++i) {
                double exact = 0;
                for (const auto& g : grads) exact += g[i];
                exact /= ranks;
                worst = std::max(worst, std::fabs(got[i] - exact));
            }
            std::printf(
                "dfp16 exchange ranks %d n %zu: worst error %.3g, bound %.3g (%.2g of max)\n",
                ranks, n, worst, bound, worst / max_abs);
            EXPECT_LE(worst, bound) << "ranks " << ranks << " n " << n;
            EXPECT_GT(worst, 0.0) << "zero trust: DFP16 rounding must show somewhere";
        }
}

TEST(DistReduce, Dfp16ExchangeIsExactForMantissasAndAtTheClamp) {
    // Values that are int16 mantissas times 2^E already: quantizing is exact and so is the sum;
    // only the final average rounds (2 ranks: half steps, ties to even).
    const std::vector<std::vector<float>> grads = {{32767.0f, -32767.0f, 3.0f, 1.0f},
                                                   {32767.0f, -32767.0f, 2.0f, 2.0f}};
    EXPECT_EQ(exchange_dfp16(grads), (std::vector<float>{32767.0f, -32767.0f, 2.0f, 2.0f}));
    // A value that rounds to 32768 x 2^E is clamped to 32767 x 2^E: the worst case of the bound.
    const std::vector<std::vector<float>> clamp = {{65535.0f}, {65535.0f}};
    EXPECT_EQ(exchange_dfp16(clamp), (std::vector<float>{65534.0f}));
}

TEST(DistReduce, AveragesSumInInt32AndRoundToNearestEven) {
    // 65538 ranks of 32767: the INT32 sum is 2147450846 < 2^31 and the average 32767, exact.
    const int ranks = kMaxRanksDfp16;
    std::vector<std::int16_t> recv(std::size_t(ranks), 32767), avg(1);
    average_chunks_s16(recv, ranks, avg);
    EXPECT_EQ(avg[0], 32767);
    std::vector<std::int16_t> ties = {1, 3, -1, 0, 2, 2}, out(3);  // chunks of 3 from 2 ranks
    average_chunks_s16(ties, 2, out);
    EXPECT_EQ(out, (std::vector<std::int16_t>{0, 2, 0}));  // 0.5 -> 0, 2.5 -> 2 (ties to even)
    EXPECT_THROW(average_chunks_s16(recv, ranks + 1, avg), Error);
    std::vector<float> f = {1.0f, 2.0f, 4.0f, 8.0f}, fo(2);
    average_chunks_f32(f, 2, fo);
    EXPECT_EQ(fo, (std::vector<float>{2.5f, 5.0f}));
}

TEST(DistReduce, NonFiniteGradientsShowInTheAgreedMaximum) {
    const std::vector<float> finite = {1.0f, -3.0f}, nan = {1.0f, NAN}, inf = {-INFINITY, 0.0f};
    EXPECT_EQ(std::bit_cast<float>(max_abs_bits(finite)), 3.0f);
    EXPECT_GE(max_abs_bits(nan), kNonFiniteBits);
    EXPECT_GE(max_abs_bits(inf), kNonFiniteBits);
    EXPECT_EQ(shared_exponent_of(max_abs_bits(finite)), 1 - 14);
}

TEST(DistReduce, GradExchangeNames) {
    EXPECT_EQ(parse_grad_exchange("fp32"), GradExchange::fp32);
    EXPECT_EQ(parse_grad_exchange("dfp16"), GradExchange::dfp16);
    try {
        parse_grad_exchange("int8");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--grad-exchange"), std::string::npos) << e.what();
    }
}

// Synchronised batch norm on one process (sums that stay as they are) is the layer's own train mode
// (oneDNN) up to rounding: forward, running statistics, and every gradient, with the fused ReLU.
TEST(DistSyncBn, OneProcessEqualsTheLayersOwnTrainMode) {
    const std::int64_t channels = 5;
    nn::BatchNorm2d plain("bn", {.channels = channels, .relu = true});
    nn::BatchNorm2d synced("bn", {.channels = channels, .relu = true});
    int calls = 0;
    synced.set_sum_across_processes([&calls](std::vector<double>&, bool) { ++calls; });
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.5f, 2.0f);
    nn::Tensor src({3, 4, 4, std::size_t(channels)}), diff_dst(src.shape);
    for (float& x : src.data) x = normal(rng);
    for (float& x : diff_dst.data) x = normal(rng);
    for (nn::BatchNorm2d* bn : {&plain, &synced})
        for (std::int64_t c = 0; c < channels; ++c) {
            bn->gamma().value[std::size_t(c)] = 0.5f + 0.25f * float(c);
            bn->beta().value[std::size_t(c)] = 0.1f * float(c) - 0.2f;
        }
    nn::Tensor dst_plain, dst_synced, diff_plain(src.shape), diff_synced(src.shape);
    const nn::Tensor* srcs[] = {&src};
    nn::Tensor* diff_plain_ptr[] = {&diff_plain};
    nn::Tensor* diff_synced_ptr[] = {&diff_synced};
    plain.forward(srcs, dst_plain, {nn::Mode::train, 0});
    synced.forward(srcs, dst_synced, {nn::Mode::train, 0});
    plain.backward(srcs, dst_plain, diff_dst, diff_plain_ptr);
    synced.backward(srcs, dst_synced, diff_dst, diff_synced_ptr);
    EXPECT_EQ(calls, 3) << "two sums in forward (mean, squared deviations), one in backward";
    const auto expect_near = [](std::span<const float> a, std::span<const float> b,
                                const char* what) {
        ASSERT_EQ(a.size(), b.size());
        float worst = 0, largest = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            worst = std::max(worst, std::fabs(a[i] - b[i]));
            largest = std::max(largest, std::fabs(a[i]));
        }
        std::printf("sync bn, one process, %s: worst difference %.3g of %.3g\n", what, worst,
                    largest);
        EXPECT_LE(worst, 1e-5f * largest) << what;
        EXPECT_GT(largest, 0.0f) << what;
    };
    expect_near(dst_plain.data, dst_synced.data, "dst");
    expect_near(plain.running_mean(), synced.running_mean(), "running mean");
    expect_near(plain.running_var(), synced.running_var(), "running variance");
    expect_near(diff_plain.data, diff_synced.data, "diff_src");
    expect_near(plain.gamma().grad, synced.gamma().grad, "diff_gamma");
    expect_near(plain.beta().grad, synced.beta().grad, "diff_beta");
}

TEST(DistSyncBn, EveryRankNeedsSamplesInTheLastBatch) {
    EXPECT_NO_THROW(check_batches_for_sync_bn(128, 64, 2));  // no short batch
    EXPECT_NO_THROW(check_batches_for_sync_bn(130, 64, 2));  // last batch 2: one each
    try {
        check_batches_for_sync_bn(129, 64, 2);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--sync-bn: the last batch of each epoch holds 1"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace dfp::dist
