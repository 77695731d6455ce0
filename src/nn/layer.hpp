// The Layer interface: forward and backward over FP32 activations, with named parameters.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nn/tensor.hpp"
#include "precision/policy.hpp"

namespace dfp::nn {

enum class Mode { train, eval };

template <class M>
struct QuantMatrix;  // nn/dfp_gemm.hpp
class MomentBlocks;  // nn/norm.hpp

// What a forward pass depends on besides its inputs. `iteration` keys the counter-based RNG of
// Dropout, so a pass is reproducible and backward can regenerate its mask.
struct Context {
    Mode mode = Mode::train;
    std::uint64_t iteration = 0;
};

struct NamedBuffer {
    std::string name;
    std::vector<float>* values;
};

using Srcs = std::span<const Tensor* const>;
// One entry per src; null where the gradient is not needed (e.g. the network's input).
using DiffSrcs = std::span<Tensor* const>;

// Which diff_src entries Layer::backward_into writes rather than adds to: bit i for entry i.
// Entries from kMax on are always added to (their buffers must then hold zeros or a sum).
struct Overwrite {
    static constexpr std::size_t kMax = 64;
    std::uint64_t bits = 0;
    bool operator[](std::size_t i) const { return i < kMax && (bits >> i & 1) != 0; }
    void set(std::size_t i) {
        if (i < kMax) bits |= std::uint64_t{1} << i;
    }
};

class Layer {
  public:
    explicit Layer(std::string name) : name_(std::move(name)) {}
    virtual ~Layer() = default;
    Layer(const Layer&) = delete;
    Layer& operator=(const Layer&) = delete;

    const std::string& name() const { return name_; }
    virtual const char* kind() const = 0;  // "conv2d", ...: for messages
    // Whether the layer applies a ReLU to its own output (dst = max(0, ...)), fused into its pass.
    virtual bool fused_relu() const { return false; }

    // Computes dst (resized here) from src, and keeps what backward needs. Throws dfp::Error
    // naming the layer and the shape when src does not fit the layer.
    virtual void forward(Srcs src, Tensor& dst, const Context& ctx) = 0;
    // After forward on the same src and dst: adds dL/dsrc into each non-null diff_src (already
    // shaped like its src) and dL/dparam into each parameter's grad, given diff_dst = dL/ddst.
    virtual void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst,
                          DiffSrcs diff_src) = 0;
    // Net::backward's entry: backward, except that each diff_src[i] with overwrite[i] holds
    // unspecified values (a pooled buffer no other consumer has written yet) and is written
    // rather than added to. That spares a gradient-sized zero fill and, in the layer, a read (an
    // oneDNN result copied in, or a GEMM that loads C). The default zero-fills those entries and
    // calls backward; layers whose kernels can write directly override it.
    virtual void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst,
                               DiffSrcs diff_src, Overwrite overwrite);
    virtual std::vector<Param*> params() { return {}; }
    // State that is not trained but must survive a checkpoint (BatchNorm's running statistics),
    // named "<layer>.<role>".
    virtual std::vector<NamedBuffer> buffers() { return {}; }

    // Conv2d and Linear run their GEMM passes (FPROP, BPROP, WTGRAD) in the precision the policy
    // gives them (precision::Policy::for_layer); every other layer is FP32 and returns null.
    virtual const precision::LayerPrecision* precision() const { return nullptr; }
    // Takes effect at the next forward (backward reuses what forward quantized). Throws
    // dfp::Error for layers without a precision setting.
    virtual void set_precision(const precision::LayerPrecision& /*precision*/) {
        fail("has no precision setting (only conv2d and linear layers have one)");
    }

    // Net::add calls it with each earlier layer fed by the same single node as this one: a
    // layer may then reuse what such a sibling derives from that input in the same forward
    // (Conv2d: the quantized src). The sibling runs first; both live as long as the Net.
    virtual void add_input_sibling(Layer& /*earlier*/) {}
    // Net::add calls it on the layer of each node that a new layer takes as an input (once per
    // input it takes from that node), and calls set_input_producer on the new layer with the layer
    // of its first input (none for the network's input).
    virtual void add_consumer(Layer& /*later*/) {}
    virtual void set_input_producer(Layer& /*earlier*/) {}
    // Where a layer quantizes a whole tensor in its next pass, as one DFP16 matrix (all axes but
    // the last, by the last) with one exponent: the layer that writes the tensor may fill the
    // matrix as it goes (QuantMatrix::begin_parts), which spares this one a read of the tensor
    // (QuantMatrix::take_produced).
    struct QuantizationTarget {
        QuantMatrix<std::int16_t>* matrix = nullptr;
        precision::TensorFormat format;
        // Whether the layer reads the FP32 tensor even when the matrix holds it (a bias gradient
        // summed from it). When not, the writer may fill the matrix without writing the tensor,
        // if it writes the tensor whenever the matrix ends up not holding it (end_parts false).
        bool reads_fp32 = true;
    };
    // The target for this layer's only input, of shape src, in its next forward; null when it
    // does not quantize it so.
    virtual QuantizationTarget input_quantization(const Shape& /*src*/) { return {}; }
    // The per-channel moments of this layer's first input, of shape src, for its forward with ctx
    // (a train-mode batch-norm), asked by `writer`, a layer that writes one of its inputs: when
    // that is the first, the writer may add them block by block as its GEMM finishes them, which
    // spares this one a read of the tensor. Null when not wanted.
    virtual MomentBlocks* input_moments(const Layer& /*writer*/, const Shape& /*src*/,
                                        const Context& /*ctx*/) {
        return nullptr;
    }
    // The target for the gradient of this layer's output, of shape dst, in its next backward; null
    // when it does not quantize it so, or when more than one consumer (add_consumer) adds to it.
    virtual QuantizationTarget output_gradient_quantization(const Shape& /*dst*/) { return {}; }

    // Throws dfp::Error "<kind> '<name>': <what>".
    [[noreturn]] void fail(const std::string& what) const;

  protected:
    // Throws unless src holds `count` tensors (count < 0: at least -count).
    void expect_srcs(Srcs src, int count) const;
    // Throws unless t is 4-D NHWC (and has `channels` channels, when channels >= 0).
    void expect_nhwc(const Tensor& t, std::int64_t channels = -1) const;
    // Throws unless t has `shape`; `what` names t ("diff_dst").
    void expect_shape(const Tensor& t, const Shape& shape, const char* what) const;

  private:
    std::string name_;
};

// Loops over fewer elements than this run on one thread: opening an OpenMP parallel region costs
// more than such work, and far more when another process keeps the other core busy.
inline constexpr std::int64_t kMinParallelElements = std::int64_t{1} << 15;

// Outputs at least this large (16 MiB of FP32, beyond the caches) are written with non-temporal
// stores by the passes that overwrite them: a plain store first reads the line it overwrites, so
// each output stream costs two streams of memory traffic (a residual join of 103 MB, 2 threads:
// 6.8 -> 5.6 ms).
inline constexpr std::int64_t kStreamMinElements = std::int64_t{1} << 22;
// True when n >= kStreamMinElements and every output is 16-byte aligned (Tensor data is).
bool streamable(std::int64_t n, std::initializer_list<const float*> outputs);
// Orders this thread's non-temporal stores before its later stores (sfence).
void store_fence();
// step(q) for every block q of 4 elements (the first 4 * (n / 4)), on all threads; each thread
// fences its streaming stores before the team's barrier.
template <class Step>
void stream_blocks(std::int64_t n, Step step) {
    const std::int64_t blocks = n / 4;
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
        for (std::int64_t q = 0; q < blocks; ++q) step(q);
        store_fence();
    }
}

// A seed that depends only on a name (FNV-1a), so parameter initialisation and Dropout masks are
// reproducible per layer and differ between layers.
std::uint64_t name_seed(std::string_view name);
// Fills p.value with uniform values in [-sqrt(6 / fan_in), sqrt(6 / fan_in)) (He et al. 2015,
// the uniform variant), from the counter-based RNG keyed by the parameter's name.
void init_he_uniform(Param& p, std::int64_t fan_in);
// dst (n) += src (n): how layers whose kernels overwrite honour the adding contract of backward.
void accumulate(float* dst, const float* src, std::int64_t n);

// Where a kernel that overwrites its output (oneDNN's backward) puts a gradient of n values:
// diff_src itself when backward_into may write it, else `scratch`, which finish() then adds into
// diff_src. A null diff_src (not needed, but the kernel writes one anyway) goes to scratch.
class GradOutput {
  public:
    GradOutput(float* diff_src, std::int64_t n, bool overwrite, std::vector<float>& scratch)
        : diff_src_(diff_src),
          n_(n),
          in_place_(overwrite && diff_src != nullptr),
          scratch_(scratch) {
        if (!in_place_) scratch_.resize(static_cast<std::size_t>(n));
    }
    float* data() const { return in_place_ ? diff_src_ : scratch_.data(); }
    void finish() const {
        if (!in_place_ && diff_src_ != nullptr) accumulate(diff_src_, scratch_.data(), n_);
    }

  private:
    float* diff_src_;
    std::int64_t n_;
    bool in_place_;
    std::vector<float>& scratch_;
};

// dst (rows, cols) += bias (cols) on every row: the FP32 bias of Conv2d and Linear.
void add_bias(float* dst, const float* bias, std::int64_t rows, std::int64_t cols);
// diff_bias (cols) += the column sums of diff_dst (rows, cols); with `keep` (rows, cols) only of
// the elements where keep > 0 (through a fused ReLU whose output is keep, as relu_backward masks).
void add_column_sums(float* diff_bias, const float* diff_dst, std::int64_t rows, std::int64_t cols,
                     const float* keep = nullptr);

}  // namespace dfp::nn
