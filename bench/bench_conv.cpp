// Google Benchmark of the ResNet-50 convolutions: dfptrain's Conv2d in DFP16 and in FP32 (oneDNN),
// and oneDNN bf16, per step (forward = FPROP; backward = BPROP + WTGRAD; backward_weights =
// WTGRAD), per layer and thread count. Counter "GFLOPs" counts a multiply-add as 2.
// `dfptrain bench conv` is the side-by-side table, with BPROP on its own and the errors.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <string>
#include <vector>

#include "bench/conv_bench.hpp"

namespace {

using namespace dfp::bench;

void BM_conv(benchmark::State& state, ConvImpl impl, ConvStep step) {
    const std::vector<ConvLayerShape> layers = resnet50_conv_layers();
    const ConvLayerShape& layer = layers[static_cast<std::size_t>(state.range(0))];
    const int threads = static_cast<int>(state.range(1));
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(threads);  // before the case: oneDNN blocks for the thread count it sees
    {
        ConvBenchCase bc(layer, hidden_layer_precision("dfp16", layer.name), 1);
        bc.run(impl, ConvStep::forward);  // backward reuses what forward computed
        for (auto _ : state) bc.run(impl, step);
        const double passes = step == ConvStep::backward ? 2.0 : 1.0;
        state.counters["GFLOPs"] = benchmark::Counter(
            passes * bc.pass_flops(), benchmark::Counter::kIsIterationInvariantRate);
    }
    omp_set_num_threads(saved_threads);
    state.SetLabel(layer.name);
}

void layer_args(benchmark::internal::Benchmark* b) {
    for (int64_t layer = 0; layer < static_cast<int64_t>(resnet50_conv_layers().size()); ++layer)
        for (int64_t threads : {1, 2}) b->Args({layer, threads});
    b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_conv, dfp16_forward, ConvImpl::dfp16, ConvStep::forward)->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, onednn_fp32_forward, ConvImpl::onednn_fp32, ConvStep::forward)
    ->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, onednn_bf16_forward, ConvImpl::onednn_bf16, ConvStep::forward)
    ->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, dfp16_backward, ConvImpl::dfp16, ConvStep::backward)->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, onednn_fp32_backward, ConvImpl::onednn_fp32, ConvStep::backward)
    ->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, onednn_bf16_backward, ConvImpl::onednn_bf16, ConvStep::backward)
    ->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, dfp16_backward_weights, ConvImpl::dfp16, ConvStep::backward_weights)
    ->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, onednn_fp32_backward_weights, ConvImpl::onednn_fp32,
                  ConvStep::backward_weights)
    ->Apply(layer_args);
BENCHMARK_CAPTURE(BM_conv, onednn_bf16_backward_weights, ConvImpl::onednn_bf16,
                  ConvStep::backward_weights)
    ->Apply(layer_args);

}  // namespace
