// Throughput of FP32 -> DFP16 quantization and DFP16 -> FP32 dequantization of whole tensors:
// bytes_per_second counts the FP32 side (4 bytes per element). Arguments: ISA (scalar or
// avx512), threads, rounding mode, elements; Quantize16 also `guess`: 1 passes the last
// exponent as QuantizeOptions::expected_exponent, as the layers do from step to step.
//   ./build/dfp_bench --benchmark_filter=Quantize --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true     (one command line)
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "format/quantize.hpp"

namespace dfp {
namespace {

std::vector<float> normal_data(std::size_t n) {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    std::vector<float> x(n);
    for (float& v : x) v = normal(rng);
    return x;
}

void configure(benchmark::State& state, Isa& isa) {
    isa = static_cast<Isa>(state.range(0));
    if (isa > cpu_isa()) state.SkipWithError("CPU lacks this ISA");
    omp_set_num_threads(static_cast<int>(state.range(1)));
    state.SetLabel(std::string(isa_name(isa)) + " threads=" + std::to_string(state.range(1)) + " " +
                   rounding_name(static_cast<Rounding>(state.range(2))));
}

void BM_Quantize16(benchmark::State& state) {
    Isa isa;
    configure(state, isa);
    const auto n = static_cast<std::size_t>(state.range(3));
    const std::vector<float> x = normal_data(n);
    QuantizeOptions o;
    o.rounding = static_cast<Rounding>(state.range(2));
    Dfp16Tensor q;
    for (auto _ : state) {
        quantize_into(x.data(), {n}, dfp16_tensor(), o, "x", q, isa);
        benchmark::DoNotOptimize(q.mantissas.data());
        if (state.range(4)) o.expected_exponent = q.exponents[0];
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
}

// int8 mantissas, one exponent per tensor (block = 0) or per block of 32 along rows of 1024
// (MXINT8, block = 32), avx512, nearest-even: what dfp8 and MXINT8 training quantize.
void BM_Quantize8(benchmark::State& state) {
    const Isa isa = active_isa();
    omp_set_num_threads(static_cast<int>(state.range(0)));
    const auto n = static_cast<std::size_t>(state.range(2));
    const std::vector<float> x = normal_data(n);
    Format f = dfp8_tensor();
    if (state.range(1) > 0) {
        f.granularity = Granularity::block;
        f.block = static_cast<int>(state.range(1));
    }
    state.SetLabel(f.name() + " threads=" + std::to_string(state.range(0)));
    Dfp8Tensor q;
    for (auto _ : state) {
        quantize_into(x.data(), {n / 1024, 1024}, f, {}, "x", q, isa);
        benchmark::DoNotOptimize(q.mantissas.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
}

void BM_Dequantize16(benchmark::State& state) {
    Isa isa;
    configure(state, isa);
    const auto n = static_cast<std::size_t>(state.range(3));
    const std::vector<float> x = normal_data(n);
    const Dfp16Tensor q = quantize<std::int16_t>(x.data(), {n}, dfp16_tensor(), {}, "x");
    std::vector<float> y(n);
    for (auto _ : state) {
        dequantize(q, y.data(), isa);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
}

void quantize_args(benchmark::internal::Benchmark* b) {
    for (long n : {1l << 18, 1l << 24})  // 1 MiB (cache) and 64 MiB (memory) of FP32
        for (Isa isa : {Isa::scalar, Isa::avx512})
            for (int threads : {1, 2})
                for (Rounding r : {Rounding::nearest_even, Rounding::stochastic})
                    for (int guess : {0, 1})
                        b->Args({static_cast<long>(isa), threads, static_cast<long>(r), n, guess});
}

void dequantize_args(benchmark::internal::Benchmark* b) {
    for (long n : {1l << 18, 1l << 24})
        for (Isa isa : {Isa::scalar, Isa::avx512})
            for (int threads : {1, 2}) b->Args({static_cast<long>(isa), threads, 0, n});
}

BENCHMARK(BM_Quantize16)
    ->Apply(quantize_args)
    ->UseRealTime()
    ->ArgNames({"isa", "threads", "rounding", "n", "guess"});
BENCHMARK(BM_Quantize8)
    ->ArgsProduct({{1, 2}, {0, 32}, {1l << 18, 1l << 24}})
    ->UseRealTime()
    ->ArgNames({"threads", "block", "n"});
BENCHMARK(BM_Dequantize16)
    ->Apply(dequantize_args)
    ->UseRealTime()
    ->ArgNames({"isa", "threads", "rounding", "n"});

}  // namespace
}  // namespace dfp
