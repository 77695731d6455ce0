// Google Benchmark of the integer GEMM: the micro-kernels alone on L1-resident panels (their peak,
// per chain length), and the full GEMMs of the shapes next to oneDNN FP32 and bf16.
// Counter "GFLOPs" counts a multiply-add as 2. `dfptrain bench gemm` is the side-by-side table.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "base/isa.hpp"
#include "bench/gemm_bench.hpp"
#include "kernels/gemm_context.hpp"

namespace {

using namespace dfp::kernels;
using namespace dfp::bench;

// One micro-kernel call on packed panels of kc = 512 (256 pairs) with the given chain length.
void BM_ukernel_s16_f32(benchmark::State& state) {
    const GemmContext<int16_t>* ctx = s16_context(dfp::active_isa());
    const int64_t kp = 256, chain = state.range(0);
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> d(-100, 100);
    auto* a = static_cast<int16_t*>(std::aligned_alloc(64, static_cast<size_t>(kp * ctx->mr * 4)));
    auto* b = static_cast<int16_t*>(std::aligned_alloc(64, static_cast<size_t>(kp * ctx->nr * 4)));
    for (int64_t i = 0; i < kp * ctx->mr * 2; ++i) a[i] = static_cast<int16_t>(d(rng));
    for (int64_t i = 0; i < kp * ctx->nr * 2; ++i) b[i] = static_cast<int16_t>(d(rng));
    std::vector<float> c(static_cast<size_t>(ctx->mr * ctx->nr)),
        rs(static_cast<size_t>(ctx->mr), 1.0f), cs(static_cast<size_t>(ctx->nr), 1.0f);
    UkernelArgs args;
    args.kp = kp;
    args.chain = chain;
    args.a = a;
    args.b = b;
    args.c = c.data();
    args.ldc = ctx->nr;
    args.row_scale = rs.data();
    args.col_scale = cs.data();
    args.load_c = true;
    for (auto _ : state) {
        ctx->f32(args);
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["GFLOPs"] = benchmark::Counter(4.0 * static_cast<double>(kp * ctx->mr * ctx->nr),
                                                  benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(ctx->isa_name);
    std::free(a);
    std::free(b);
}
BENCHMARK(BM_ukernel_s16_f32)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(32)->Arg(64)->Arg(256);

void BM_gemm(benchmark::State& state, GemmImpl impl) {
    const std::vector<GemmShape> shapes = default_gemm_shapes();
    const GemmShape& shape = shapes[static_cast<size_t>(state.range(0))];
    const int threads = static_cast<int>(state.range(1));
    GemmBenchCase bc(shape, 1);
    const GemmOptions options;
    for (auto _ : state) bc.run(impl, threads, options);
    state.counters["GFLOPs"] =
        benchmark::Counter(bc.flops(), benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(shape.form + " " + std::to_string(shape.m) + "x" + std::to_string(shape.n) +
                   "x" + std::to_string(shape.k));
}

void shape_args(benchmark::internal::Benchmark* b) {
    for (int64_t s = 0; s < static_cast<int64_t>(default_gemm_shapes().size()); ++s)
        for (int64_t t : {1, 2}) b->Args({s, t});
    b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_gemm, dfp16, GemmImpl::dfp16)->Apply(shape_args);
BENCHMARK_CAPTURE(BM_gemm, onednn_fp32, GemmImpl::onednn_fp32)->Apply(shape_args);
BENCHMARK_CAPTURE(BM_gemm, onednn_bf16, GemmImpl::onednn_bf16)->Apply(shape_args);
BENCHMARK_CAPTURE(BM_gemm, dfp8, GemmImpl::dfp8)->Apply(shape_args);

}  // namespace

namespace {

// A packer alone (B: NR-wide micro-panels; A: MR-tall, 16 of them), source and destination in
// cache: elements per second.
void BM_pack_s16(benchmark::State& state, bool a) {
    const GemmContext<int16_t>* ctx = s16_context(dfp::active_isa());
    const bool k_contiguous = state.range(0) != 0, with_stats = state.range(1) != 0;
    const int64_t kc = 256, cols = a ? 16 * ctx->mr : 4 * ctx->nr, ld = k_contiguous ? kc : cols;
    std::vector<int16_t> src(static_cast<size_t>(kc * cols), 1234);
    auto* dst = static_cast<int16_t*>(std::aligned_alloc(64, static_cast<size_t>(kc * cols * 2)));
    std::vector<uint64_t> stats(static_cast<size_t>(cols / 8 * kMaxStatLevels));
    const PackFn<int16_t> pack = a ? ctx->pack_a : ctx->pack_b;
    for (auto _ : state) {
        pack(src.data(), ld, k_contiguous, cols, kc, 0, dst, with_stats ? stats.data() : nullptr,
             nullptr, kc / 2);
        benchmark::DoNotOptimize(dst);
    }
    state.counters["elements"] = benchmark::Counter(static_cast<double>(kc * cols),
                                                    benchmark::Counter::kIsIterationInvariantRate);
    std::free(dst);
}
BENCHMARK_CAPTURE(BM_pack_s16, b, false)->Args({0, 0})->Args({0, 1})->Args({1, 0})->Args({1, 1});
BENCHMARK_CAPTURE(BM_pack_s16, a, true)->Args({0, 0})->Args({0, 1})->Args({1, 0})->Args({1, 1});

}  // namespace
