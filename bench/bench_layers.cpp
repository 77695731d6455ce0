// The memory-bound passes of a training step between the convolutions: the residual join (Add
// with its ReLU), a ReLU layer, a train-mode batch-norm with its ReLU and one with the join fused
// in too, forward and backward, on
// a tensor of ResNet-50's res2 output at batch 32 (103 MB of FP32, beyond the caches) and one
// that fits in L2; max pooling and local response normalisation on GoogLeNet's shapes; an SGD
// update of AlexNet's largest weights. bytes_per_second counts every stream the pass must read or
// write once.
//   ./build/dfp_bench --benchmark_filter='Add|Relu|BatchNorm|MaxPool|Lrn|Sgd'
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true   (one command line)
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "nn/activation.hpp"
#include "nn/dfp_gemm.hpp"
#include "nn/join.hpp"
#include "nn/norm.hpp"
#include "nn/pool.hpp"
#include "train/sgd.hpp"

namespace dfp::nn {
namespace {

Tensor random_tensor(const Shape& shape, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    Tensor t(shape);
    for (float& v : t.data) v = normal(rng);
    return t;
}

// Forward (backward = false) or backward of `layer` in train mode with `inputs` inputs of shape
// `shape` (default: state.range(1) values) on state.range(0) threads; backward with every
// gradient fresh (written), as Net::backward asks of a first consumer. Bytes: every stream read or
// written once.
void run_layer(benchmark::State& state, Layer& layer, int inputs, bool backward, Shape shape = {}) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    if (shape.empty()) shape = {static_cast<std::size_t>(state.range(1))};
    const std::size_t n = shape_numel(shape);
    std::vector<Tensor> src, diff;
    std::vector<const Tensor*> srcs;
    std::vector<Tensor*> diffs;
    Overwrite fresh;
    for (int i = 0; i < inputs; ++i) {
        src.push_back(random_tensor(shape, unsigned(i + 1)));
        diff.emplace_back(shape);
        fresh.set(std::size_t(i));
    }
    for (int i = 0; i < inputs; ++i)
        srcs.push_back(&src[std::size_t(i)]), diffs.push_back(&diff[std::size_t(i)]);
    const Tensor dy = random_tensor(shape, 99);
    Tensor y;
    const Context train{Mode::train, 0};
    layer.forward(srcs, y, train);
    for (auto _ : state) {
        if (backward)
            layer.backward_into(srcs, y, dy, diffs, fresh);
        else
            layer.forward(srcs, y, train);
        benchmark::DoNotOptimize(y.data.data());
        benchmark::DoNotOptimize(diff[0].data.data());
    }
    // Forward reads the inputs and writes y; backward reads y and dy and writes each gradient.
    const int streams = backward ? 2 + inputs : inputs + 1;
    state.SetBytesProcessed(
        static_cast<std::int64_t>(state.iterations() * streams * n * sizeof(float)));
}

void BM_AddReluForward(benchmark::State& state) {
    Add add("add", true);
    run_layer(state, add, 2, false);
}
void BM_AddReluBackward(benchmark::State& state) {
    Add add("add", true);
    run_layer(state, add, 2, true);
}
// GoogLeNet's norm2 (LRN across 5 channels, beta 0.75) at batch state.range(1): (N, 56, 56, 192).
void BM_LrnForward(benchmark::State& state) {
    Lrn lrn("norm2", {.size = 5, .alpha = 1e-4f, .beta = 0.75f, .k = 1.0f});
    run_layer(state, lrn, 1, false, {std::size_t(state.range(1)), 56, 56, 192});
}
void BM_LrnBackward(benchmark::State& state) {
    Lrn lrn("norm2", {.size = 5, .alpha = 1e-4f, .beta = 0.75f, .k = 1.0f});
    run_layer(state, lrn, 1, true, {std::size_t(state.range(1)), 56, 56, 192});
}
void BM_ReluForward(benchmark::State& state) {
    Relu relu("relu");
    run_layer(state, relu, 1, false);
}
void BM_ReluBackward(benchmark::State& state) {
    Relu relu("relu");
    run_layer(state, relu, 1, true);
}
// Batch-norm + ReLU over (state.range(1), 56, 56, 256) in NHWC (ResNet-50's res2 output at batch
// 32 for state.range(1) = 32): the statistics are part of the pass.
void BM_BatchNormReluForward(benchmark::State& state) {
    BatchNorm2d bn("bn", {.channels = 256, .relu = true});
    run_layer(state, bn, 1, false, {std::size_t(state.range(1)), 56, 56, 256});
}
void BM_BatchNormReluBackward(benchmark::State& state) {
    BatchNorm2d bn("bn", {.channels = 256, .relu = true});
    run_layer(state, bn, 1, true, {std::size_t(state.range(1)), 56, 56, 256});
}
// The same batch-norm with ResNet's residual join and its ReLU fused in (a block's output),
// against BatchNormRelu plus AddRelu above.
void BM_BatchNormAddReluForward(benchmark::State& state) {
    BatchNorm2d bn("bn", {.channels = 256, .relu = true, .residual = true});
    run_layer(state, bn, 2, false, {std::size_t(state.range(1)), 56, 56, 256});
}
void BM_BatchNormAddReluBackward(benchmark::State& state) {
    BatchNorm2d bn("bn", {.channels = 256, .relu = true, .residual = true});
    run_layer(state, bn, 2, true, {std::size_t(state.range(1)), 56, 56, 256});
}

// A DFP16 layer next to the batch-norm: it quantizes a tensor whole (the batch-norm's output as
// its consumer's input, or the gradient of the batch-norm's input as that input's producer),
// unless the batch-norm did as it wrote it (Layer::input_quantization and
// output_gradient_quantization; Conv2d does the same).
class QuantizingNeighbour : public Layer {
  public:
    QuantizingNeighbour() : Layer("neighbour") {}
    const char* kind() const override { return "neighbour"; }
    QuantizationTarget input_quantization(const Shape&) override { return {&matrix, activations}; }
    QuantizationTarget output_gradient_quantization(const Shape&) override {
        return {&matrix, gradients, reads_fp32};
    }
    bool reads_fp32 = true;  // whether it reads the FP32 gradient besides the quantized one
    void take_or_quantize(const Tensor& t, const precision::TensorFormat& format,
                          std::uint64_t iteration) {
        const auto rows = std::int64_t(t.numel() / t.shape.back());
        const auto cols = std::int64_t(t.shape.back());
        if (!matrix.take_produced(t.data.data(), rows, cols, format, iteration))
            matrix.quantize(t.data.data(), rows, cols, format, iteration);
    }
    void forward(Srcs src, Tensor&, const Context& ctx) override {
        take_or_quantize(*src[0], activations, ctx.iteration);
    }
    void backward(Srcs, const Tensor&, const Tensor&, DiffSrcs) override {}
    QuantMatrix<std::int16_t> matrix{"neighbour.tensor"};
    const precision::LayerPrecision precision = precision::Policy::dfp16().for_layer("c", 1, 3);
    const precision::TensorFormat &activations = precision.activations,
                                  &gradients = precision.gradients;
};
// Batch-norm + ReLU forward (as BatchNormReluForward) and the DFP16 quantization of its output for
// a consumer: state.range(1) = 0, two passes (the consumer reads the output again); 1, the
// quantization fused into the batch-norm's normalising pass. Bytes: src twice, y and its mantissas
// once.
void BM_BatchNormReluQuantize(benchmark::State& state) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    BatchNorm2d bn("bn", {.channels = 256, .relu = true});
    QuantizingNeighbour consumer;
    if (state.range(1) == 1) bn.add_consumer(consumer);
    const Tensor src = random_tensor({32, 56, 56, 256}, 1);
    const Tensor* srcs[] = {&src};
    Tensor y, none;
    const Tensor* ys[] = {&y};
    std::uint64_t iteration = 0;
    for (auto _ : state) {
        const Context train{Mode::train, iteration++};
        bn.forward(srcs, y, train);
        consumer.forward(ys, none, train);
        benchmark::DoNotOptimize(consumer.matrix.q.mantissas.data());
    }
    state.counters["fused"] = bn.quantized_for_consumer();
    state.SetBytesProcessed(std::int64_t(state.iterations() * src.numel() * (3 * 4 + 2)));
}
// Batch-norm + ReLU backward (as BatchNormReluBackward) and the DFP16 quantization of the gradient
// it writes, for the layer that produced its input: state.range(1) = 0, two passes (the producer
// reads the gradient again); 1, the quantization fused into the batch-norm's last pass; 2, fused
// for a producer that reads only the quantized gradient (a convolution without a bias), so the
// FP32 gradient is not written. Bytes: src and dy twice, the gradient (not with 2) and its
// mantissas once.
void BM_BatchNormReluBackwardQuantize(benchmark::State& state) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    BatchNorm2d bn("bn", {.channels = 256, .relu = true});
    QuantizingNeighbour producer;
    if (state.range(1) >= 1) bn.set_input_producer(producer);
    producer.reads_fp32 = state.range(1) < 2;
    const Tensor src = random_tensor({32, 56, 56, 256}, 1), dy = random_tensor(src.shape, 2);
    const Tensor* srcs[] = {&src};
    Tensor y, diff(src.shape);
    Tensor* diffs[] = {&diff};
    Overwrite fresh;
    fresh.set(0);
    bn.forward(srcs, y, {Mode::train, 0});
    for (auto _ : state) {
        bn.backward_into(srcs, y, dy, diffs, fresh);
        producer.take_or_quantize(diff, producer.gradients, 0);
        benchmark::DoNotOptimize(producer.matrix.q.mantissas.data());
    }
    state.counters["fused"] = bn.quantized_for_producer();
    const std::int64_t gradient_bytes = state.range(1) < 2 ? 4 : 0;
    state.SetBytesProcessed(
        std::int64_t(state.iterations() * src.numel() * (4 * 4 + gradient_bytes + 2)));
}

// Max pooling at batch 32 on GoogLeNet's shapes: state.range(1) = 0, pool1 (112x112x64, 3x3
// stride 2, ceil mode); 1, an inception block's pool branch (28x28x256, 3x3 stride 1, pad 1).
// Bytes: src and dst once each.
void run_maxpool(benchmark::State& state, bool backward) {
    const bool inception = state.range(1) == 1;
    MaxPool2d pool("pool", inception ? Pool2dConfig{.kernel = 3, .stride = 1, .pad = 1}
                                     : Pool2dConfig{.kernel = 3, .stride = 2, .ceil_mode = true});
    const Shape shape = inception ? Shape{32, 28, 28, 256} : Shape{32, 112, 112, 64};
    omp_set_num_threads(static_cast<int>(state.range(0)));
    const Tensor src = random_tensor(shape, 1);
    Tensor y, diff(shape);
    const Context train{Mode::train, 0};
    const Tensor* srcs[] = {&src};
    Tensor* diffs[] = {&diff};
    pool.forward(srcs, y, train);
    const Tensor dy = random_tensor(y.shape, 2);
    Overwrite fresh;
    fresh.set(0);
    for (auto _ : state) {
        if (backward)
            pool.backward_into(srcs, y, dy, diffs, fresh);
        else
            pool.forward(srcs, y, train);
        benchmark::DoNotOptimize(y.data.data());
        benchmark::DoNotOptimize(diff.data.data());
    }
    state.SetBytesProcessed(
        static_cast<std::int64_t>(state.iterations() * (src.numel() + y.numel()) * sizeof(float)));
}
void BM_MaxPoolForward(benchmark::State& state) {
    run_maxpool(state, false);
}
void BM_MaxPoolBackward(benchmark::State& state) {
    run_maxpool(state, true);
}

// One SGD update (momentum, weight decay) of AlexNet's fc6 weights, 9216 x 4096 (151 MB per
// array): reads the gradient, the weights and the velocity, writes the last two.
void BM_SgdStep(benchmark::State& state) {
    omp_set_num_threads(static_cast<int>(state.range(0)));
    Param w("fc6.weight", {4096, 9216});
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 0.01f);
    for (float& v : w.value) v = normal(rng);
    for (float& g : w.grad) g = normal(rng);
    train::Sgd sgd({&w}, {.momentum = 0.9f, .weight_decay = 5e-4f});
    std::int64_t iteration = 0;
    for (auto _ : state) {
        sgd.step(1e-3f, iteration++);
        benchmark::DoNotOptimize(w.value.data());
    }
    state.SetBytesProcessed(state.iterations() *
                            static_cast<std::int64_t>(w.value.size() * 5 * sizeof(float)));
}

BENCHMARK(BM_SgdStep)->ArgsProduct({{1, 2}})->UseRealTime()->ArgNames({"threads"});
BENCHMARK(BM_MaxPoolForward)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->UseRealTime()
    ->ArgNames({"threads", "inception"});
BENCHMARK(BM_MaxPoolBackward)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->UseRealTime()
    ->ArgNames({"threads", "inception"});
BENCHMARK(BM_LrnForward)
    ->ArgsProduct({{1, 2}, {32}})
    ->UseRealTime()
    ->ArgNames({"threads", "batch"});
BENCHMARK(BM_LrnBackward)
    ->ArgsProduct({{1, 2}, {32}})
    ->UseRealTime()
    ->ArgNames({"threads", "batch"});
BENCHMARK(BM_ReluForward)
    ->ArgsProduct({{1, 2}, {1l << 16, 32l * 56 * 56 * 256}})
    ->UseRealTime()
    ->ArgNames({"threads", "n"});
BENCHMARK(BM_ReluBackward)
    ->ArgsProduct({{1, 2}, {1l << 16, 32l * 56 * 56 * 256}})
    ->UseRealTime()
    ->ArgNames({"threads", "n"});
BENCHMARK(BM_BatchNormReluForward)
    ->ArgsProduct({{1, 2}, {1, 32}})
    ->UseRealTime()
    ->ArgNames({"threads", "batch"});
BENCHMARK(BM_BatchNormReluQuantize)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->UseRealTime()
    ->ArgNames({"threads", "fused"});
BENCHMARK(BM_BatchNormReluBackwardQuantize)
    ->ArgsProduct({{1, 2}, {0, 1, 2}})
    ->UseRealTime()
    ->ArgNames({"threads", "fused"});
BENCHMARK(BM_BatchNormAddReluForward)
    ->ArgsProduct({{1, 2}, {1, 32}})
    ->UseRealTime()
    ->ArgNames({"threads", "batch"});
BENCHMARK(BM_BatchNormReluBackward)
    ->ArgsProduct({{1, 2}, {1, 32}})
    ->UseRealTime()
    ->ArgNames({"threads", "batch"});
BENCHMARK(BM_BatchNormAddReluBackward)
    ->ArgsProduct({{1, 2}, {1, 32}})
    ->UseRealTime()
    ->ArgNames({"threads", "batch"});
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
