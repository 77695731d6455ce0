// The memory-bound passes of a training step between the convolutions: the residual join (Add
// with its ReLU) and a ReLU layer, forward and backward, on a tensor of ResNet-50's res2 output at batch 32
// (103 MB of FP32, beyond the caches) and one that fits in L2. bytes_per_second counts every
// stream the pass reads or writes once.
//   ./build/dfp_bench --benchmark_filter='Add|Relu' --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true     (one command line)
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "nn/activation.hpp"
#include "nn/join.hpp"

namespace dfp::nn {
namespace {

Tensor random_tensor(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    Tensor t(Shape{n});
    for (float& v : t.data) v = normal(rng);
    return t;
}

void BM_AddReluForward(benchmark::State& state) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    const auto n = static_cast<std::size_t>(state.range(1));
    const Tensor a = random_tensor(n, 1), b = random_tensor(n, 2);
    const std::vector<const Tensor*> srcs{&a, &b};
    Add add("add", true);
    Tensor y;
    for (auto _ : state) {
        add.forward(srcs, y, {});
        benchmark::DoNotOptimize(y.data.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 3 * n * sizeof(float)));
}

// Both gradients fresh (written), as Net::backward asks of the residual join.
void BM_AddReluBackward(benchmark::State& state) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    const auto n = static_cast<std::size_t>(state.range(1));
    const Tensor a = random_tensor(n, 1), b = random_tensor(n, 2), dy = random_tensor(n, 3);
    const std::vector<const Tensor*> srcs{&a, &b};
    Add add("add", true);
    Tensor y;
    add.forward(srcs, y, {});
    Tensor da(Shape{n}), db(Shape{n});
    const std::vector<Tensor*> diff{&da, &db};
    Overwrite fresh;
    fresh.set(0);
    fresh.set(1);
    for (auto _ : state) {
        add.backward_into(srcs, y, dy, diff, fresh);
        benchmark::DoNotOptimize(da.data.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 4 * n * sizeof(float)));
}

void BM_ReluForward(benchmark::State& state) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    const auto n = static_cast<std::size_t>(state.range(1));
    const Tensor x = random_tensor(n, 1);
    const std::vector<const Tensor*> srcs{&x};
    Relu relu("relu");
    Tensor y;
    for (auto _ : state) {
        relu.forward(srcs, y, {});
        benchmark::DoNotOptimize(y.data.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * n * sizeof(float)));
}

// The gradient fresh (written), as Net::backward asks of the first consumer.
void BM_ReluBackward(benchmark::State& state) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    const auto n = static_cast<std::size_t>(state.range(1));
    const Tensor x = random_tensor(n, 1), dy = random_tensor(n, 3);
    const std::vector<const Tensor*> srcs{&x};
    Relu relu("relu");
    Tensor y;
    relu.forward(srcs, y, {});
    Tensor dx(Shape{n});
    const std::vector<Tensor*> diff{&dx};
    Overwrite fresh;
    fresh.set(0);
    for (auto _ : state) {
        relu.backward_into(srcs, y, dy, diff, fresh);
        benchmark::DoNotOptimize(dx.data.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 3 * n * sizeof(float)));
}

BENCHMARK(BM_ReluForward)
    ->ArgsProduct({{1, 2}, {1l << 16, 32l * 56 * 56 * 256}})
    ->UseRealTime()
    ->ArgNames({"threads", "n"});
BENCHMARK(BM_ReluBackward)
    ->ArgsProduct({{1, 2}, {1l << 16, 32l * 56 * 56 * 256}})
    ->UseRealTime()
    ->ArgNames({"threads", "n"});
BENCHMARK(BM_AddReluForward)
    ->ArgsProduct({{1, 2}, {1l << 16, 32l * 56 * 56 * 256}})
    ->UseRealTime()
    ->ArgNames({"threads", "n"});
BENCHMARK(BM_AddReluBackward)
    ->ArgsProduct({{1, 2}, {1l << 16, 32l * 56 * 56 * 256}})
    ->UseRealTime()
    ->ArgNames({"threads", "n"});

}  // namespace
}  // namespace dfp::nn
