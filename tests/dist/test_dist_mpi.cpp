// Data-parallel training across real MPI ranks (ctest runs this under mpirun -np 2): N ranks with
// local batches equal one process with the global batch, up to FP32 rounding (FP32 exchange) or
// within the DFP16 bound of dist/reduce.hpp; every rank ends with the same weights; the byte count
// is the alltoall + allgather volume.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "base/error.hpp"
#include "dist/communicator.hpp"
#include "dist/data_parallel.hpp"
#include "dist/grad_exchange.hpp"
#include "models/registry.hpp"
#include "precision/policy.hpp"
#include "train/train_step.hpp"

namespace dfp::dist {
namespace {

Communicator* g_comm = nullptr;

constexpr int kSide = 28, kClasses = 10;
constexpr float kLr = 0.05f;
constexpr train::SgdConfig kSgd{0.9f, 5e-4f, false};

// LeNet-5 at 28x28, or ResNet-20 (batch norm) at 8x8, in FP32.
struct Model {
    const char* name = "lenet5";
    int side = kSide;
};
constexpr Model kResnet20{"resnet20", 8};

nn::Net fp32_net(const Model& model) {
    const models::ImageInput input{model.side, model.side, 1, kClasses};
    nn::Net net = models::build(model.name, input);
    net.apply_precision(precision::Policy::parse("fp32"));
    return net;
}

struct Trainer {
    explicit Trainer(const Model& model = {}) : net(fp32_net(model)) {}
    nn::Net net;
    train::Sgd sgd{net.params(), kSgd};
};

// Samples [first, first + n) of a fixed synthetic set of side x side images.
nn::Tensor images_of(std::int64_t first, std::int64_t n, int side, std::vector<int>& labels) {
    const auto pixels = static_cast<std::size_t>(side * side);
    nn::Tensor t;
    t.shape = {std::size_t(n), std::size_t(side), std::size_t(side), 1};
    t.data.resize(std::size_t(n) * pixels);
    labels.resize(std::size_t(n));
    for (std::int64_t s = 0; s < n; ++s) {
        std::mt19937 rng(static_cast<unsigned>(first + s));
        std::normal_distribution<float> normal;
        for (std::size_t i = 0; i < pixels; ++i) t.data[std::size_t(s) * pixels + i] = normal(rng);
        labels[std::size_t(s)] = static_cast<int>((first + s) % kClasses);
    }
    return t;
}

// Runs `steps` steps of `global` samples each on one process and on the ranks (each its share).
struct Comparison {
    double worst_fp32_relative = 0;    // max |w_dist - w_ref| / max |w_ref|, per parameter
    double worst_buffer_relative = 0;  // the same for batch norm's running statistics
    std::uint64_t bytes = 0;
};

Comparison compare(GradExchange kind, std::int64_t global, int steps,
                   std::vector<double>* dfp16_bounds = nullptr,
                   std::vector<double>* dfp16_errors = nullptr, const Model& model = {},
                   bool sync_bn = false) {
    Trainer ref(model), dist(model);
    GradientExchange exchange(*g_comm, dist.net, kind);
    if (sync_bn) synchronise_batch_norm(*g_comm, dist.net, exchange);
    const int ranks = g_comm->size(), rank = g_comm->rank();
    std::vector<int> labels;
    std::uint64_t bytes = 0;
    for (int step = 0; step < steps; ++step) {
        const std::int64_t first = step * global;
        const nn::Tensor all = images_of(first, global, model.side, labels);
        train::train_step(ref.net, ref.sgd, all, labels, kLr, step);
        // The DFP16 bound of the first step: from the largest weighted gradient of any rank
        // (recomputed here for every rank's shard); a weight moves by lr x its gradient.
        if (dfp16_bounds && step == 0) {
            std::vector<float> max_grad(ref.net.params().size(), 0.0f);
            for (int r = 0; r < ranks; ++r) {
                Trainer shard;
                const std::int64_t n = shard_size(global, ranks, r);
                const nn::Tensor mine =
                    images_of(first + shard_begin(global, ranks, r), n, model.side, labels);
                train::train_step(shard.net, shard.sgd, mine, labels, kLr, step);
                const float weight = static_cast<float>(n * ranks) / static_cast<float>(global);
                const auto params = shard.net.params();
                for (std::size_t k = 0; k < params.size(); ++k)
                    for (float g : params[k]->grad)
                        max_grad[k] = std::max(max_grad[k], std::fabs(g * weight));
            }
            for (float m : max_grad)
                dfp16_bounds->push_back(kLr * 1.5 * std::ldexp(1.0, std::ilogb(m) - 14));
        }
        const std::int64_t b = shard_size(global, ranks, rank);
        exchange.begin_step(b, global);
        if (b > 0) {
            const nn::Tensor mine =
                images_of(first + shard_begin(global, ranks, rank), b, model.side, labels);
            train::train_step(dist.net, dist.sgd, mine, labels, kLr, step, &exchange);
        } else {
            train::train_step_without_samples(dist.net, dist.sgd, kLr, step, exchange);
        }
        bytes = exchange.bytes_sent();
        check_same_weights(*g_comm, dist.net.params(), step);
    }
    Comparison c;
    c.bytes = bytes;
    const auto ref_params = ref.net.params(), dist_params = dist.net.params();
    for (std::size_t k = 0; k < ref_params.size(); ++k) {
        double diff = 0, max_w = 0;
        for (std::size_t i = 0; i < ref_params[k]->value.size(); ++i) {
            diff = std::max(diff,
                            double(std::fabs(ref_params[k]->value[i] - dist_params[k]->value[i])));
            max_w = std::max(max_w, double(std::fabs(ref_params[k]->value[i])));
        }
        c.worst_fp32_relative = std::max(c.worst_fp32_relative, diff / max_w);
        if (dfp16_errors) dfp16_errors->push_back(diff);
    }
    // The running statistics of batch norm: the global batch's only when synchronised.
    const auto ref_buffers = ref.net.buffers(), dist_buffers = dist.net.buffers();
    for (std::size_t k = 0; k < ref_buffers.size(); ++k) {
        const std::vector<float>& r = *ref_buffers[k].values;
        const std::vector<float>& d = *dist_buffers[k].values;
        double diff = 0, max_r = 0;
        for (std::size_t i = 0; i < r.size(); ++i) {
            diff = std::max(diff, double(std::fabs(r[i] - d[i])));
            max_r = std::max(max_r, double(std::fabs(r[i])));
        }
        c.worst_buffer_relative = std::max(c.worst_buffer_relative, diff / max_r);
    }
    return c;
}

TEST(DistMpi, Fp32ExchangeEqualsOneProcessWithTheGlobalBatch) {
    // 16 = 8 + 8; 7 = 4 + 3 (weighted shares); 1 = 1 + 0 (a rank without samples).
    for (std::int64_t global : {16, 7, 1}) {
        const Comparison c = compare(GradExchange::fp32, global, 3);
        std::printf(
            "rank %d fp32 exchange, global batch %lld, 3 steps: worst relative weight "
            "difference %.3g\n",
            g_comm->rank(), static_cast<long long>(global), c.worst_fp32_relative);
        EXPECT_LT(c.worst_fp32_relative, 1e-5) << "global batch " << global;
    }
}

TEST(DistMpi, SynchronisedBatchNormEqualsOneProcessWithTheGlobalBatch) {
    // 16 = 8 + 8; 7 = 4 + 3: the gradient terms' sums are weighted like the gradients.
    for (std::int64_t global : {16, 7}) {
        const Comparison synced =
            compare(GradExchange::fp32, global, 2, nullptr, nullptr, kResnet20, true);
        const Comparison per_rank =
            compare(GradExchange::fp32, global, 2, nullptr, nullptr, kResnet20, false);
        std::printf(
            "rank %d resnet20, global batch %lld, 2 steps: worst relative difference of "
            "weights / running statistics: synchronised %.3g / %.3g, per rank %.3g / %.3g\n",
            g_comm->rank(), static_cast<long long>(global), synced.worst_fp32_relative,
            synced.worst_buffer_relative, per_rank.worst_fp32_relative,
            per_rank.worst_buffer_relative);
        EXPECT_LT(synced.worst_fp32_relative, 1e-5) << "global batch " << global;
        EXPECT_LT(synced.worst_buffer_relative, 1e-5) << "global batch " << global;
        // Zero trust: per-rank statistics differ, and the comparison sees it.
        EXPECT_GT(per_rank.worst_buffer_relative, 1e-3) << "global batch " << global;
    }
}

TEST(DistMpi, Dfp16ExchangeIsWithinItsBoundAfterOneStep) {
    for (std::int64_t global : {16, 7}) {
        std::vector<double> bounds, errors;
        compare(GradExchange::dfp16, global, 1, &bounds, &errors);
        ASSERT_EQ(bounds.size(), errors.size());
        double worst_share = 0;
        for (std::size_t k = 0; k < bounds.size(); ++k) {
            // The FP32 part (different summation orders) is far below the DFP16 bound; allow it.
            EXPECT_LE(errors[k], 1.01 * bounds[k] + 1e-7) << "parameter " << k;
            worst_share = std::max(worst_share, errors[k] / bounds[k]);
        }
        std::printf("rank %d dfp16 exchange, global batch %lld: largest error %.2f of the bound\n",
                    g_comm->rank(), static_cast<long long>(global), worst_share);
    }
}

TEST(DistMpi, BytesSentAreHalvedByDfp16) {
    const std::uint64_t fp32 = compare(GradExchange::fp32, 16, 1).bytes;
    const std::uint64_t dfp16 = compare(GradExchange::dfp16, 16, 1).bytes;
    // LeNet-5's parameters, each padded to a multiple of the ranks, twice (N-1)/N of it.
    Trainer t;
    const auto ranks = static_cast<std::uint64_t>(g_comm->size());
    std::uint64_t values = 0, tensors = 0;
    for (const nn::Param* p : t.net.params()) {
        values += 2 * (ranks - 1) * ((p->grad.size() + ranks - 1) / ranks);
        ++tensors;
    }
    std::printf("rank %d bytes sent per step: fp32 %llu, dfp16 %llu\n", g_comm->rank(),
                static_cast<unsigned long long>(fp32), static_cast<unsigned long long>(dfp16));
    EXPECT_EQ(fp32, 4 * values);
    EXPECT_EQ(dfp16, 2 * values + 4 * tensors);
}

TEST(DistMpi, DifferentWeightsAreCaught) {
    Trainer t;
    if (g_comm->rank() == 1) t.net.params()[0]->value[3] += 1e-6f;
    try {
        check_same_weights(*g_comm, t.net.params(), 41);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("after iteration 41 the ranks' weights differ"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace dfp::dist

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    auto comm = dfp::dist::Communicator::join_if_launched(60);
    if (!comm || comm->size() < 2) {
        std::fprintf(stderr, "run under mpirun -np 2 (or more)\n");
        return 1;
    }
    dfp::dist::g_comm = comm.get();
    return RUN_ALL_TESTS();
}
