// Normalisation over NHWC feature maps: batch normalisation (per channel) and local response
// normalisation (across channels).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "format/quantize.hpp"
#include "nn/layer.hpp"

namespace dfp::nn {

// Train mode: per channel, over the M = N*H*W rows of src, mean and (biased) variance of the batch;
// dst = gamma (src - mean) rstd + beta with rstd = 1 / sqrt(var + eps). Saves mean and rstd (C)
// for backward. dst, src are (M, C); gamma, beta, mean, rstd (C).
void batchnorm_forward_train(float* dst, float* mean, float* rstd, const float* src,
                             const float* gamma, const float* beta, std::int64_t m, std::int64_t c,
                             float eps, bool relu = false);
// The same with given statistics (eval mode: the running ones, rstd from the running variance).
// `relu` (both): dst = max(0, ...) in the same pass (NaN passes, as relu_forward). `residual`
// (M, C) or null: added to the normalised value before the ReLU.
void batchnorm_forward_stats(float* dst, const float* src, const float* mean, const float* rstd,
                             const float* gamma, const float* beta, std::int64_t m, std::int64_t c,
                             bool relu = false, const float* residual = nullptr);
// Gradients of either forward, adding into diff_src (M, C) (when not null), diff_gamma and
// diff_beta (C). batch_stats: the statistics came from this batch (train mode), so they depend on
// src too; otherwise they are constants (eval mode). relu_dst (M, C), the fused forward's output,
// or null: diff_dst counts only where relu_dst > 0 (relu_backward's mask, applied on the fly).
void batchnorm_backward(float* diff_src, float* diff_gamma, float* diff_beta, const float* diff_dst,
                        const float* src, const float* mean, const float* rstd, const float* gamma,
                        std::int64_t m, std::int64_t c, bool batch_stats,
                        const float* relu_dst = nullptr);

// The per-channel moments of an (M, C) tensor, in blocks of kernels::kRowsDoneRows rows: each
// block's mean and sum of squared deviations from one sweep over the block while it is in the
// caches (sums of deviations from its first row), the blocks merged in order with Chan, Golub and
// LeVeque's update in double. So the same bits whether the blocks come from a pass of their
// own (compute) or from the layer that writes the tensor, as its GEMM finishes them (add, from
// GemmOptions::rows_done), and on any number of threads; about the precision of the two-pass
// double reference, and no cancellation when |mean| >> std.
class MomentBlocks {
  public:
    // For an (m, c) tensor; forgets the blocks and the handshake below.
    void begin(std::int64_t m, std::int64_t c);
    // Rows [row0, row0 + rows) of the tensor, at x: one block, row0 a multiple of the block
    // size. Thread-safe for distinct blocks.
    void add(const float* x, std::int64_t row0, std::int64_t rows);
    // begin, then every block of x (m, c), on all threads.
    void compute(const float* x, std::int64_t m, std::int64_t c);
    // Mean and biased variance per channel (c each) of the blocks added.
    void merge(float* mean, float* variance) const;
    // The writer's handshake (Layer::input_moments): end() once every block of src was added at
    // `iteration`; take() says whether that happened for this src and clears it.
    void end(const float* src, std::uint64_t iteration);
    bool take(const float* src, std::int64_t m, std::int64_t c, std::uint64_t iteration);

  private:
    std::int64_t m_ = 0, c_ = 0;
    std::vector<double> means_, m2s_;  // [block][channel]
    const float* source_ = nullptr;
    std::uint64_t iteration_ = 0;
    bool produced_ = false;
};

// Per channel (c of them), over rows 1..rows-1 of the block x (rows, c): s1 = sum of
// d = x[i] - x[0] and s2 = sum of d * d, in float, row after row: MomentBlocks::add's sweep, and
// the same with AVX-512 F (nn/avx512/moments_avx512.cpp), the same bits.
void block_deviation_sums(const float* x, std::int64_t rows, std::int64_t c, float* s1, float* s2);
void block_deviation_sums_avx512(const float* x, std::int64_t rows, std::int64_t c, float* s1,
                                 float* s2);

// The train-mode passes of BatchNorm2d, each at the minimum of memory traffic (see norm.cpp).
// Mean and biased variance per channel of src (M, C), in one read of src from memory
// (MomentBlocks::compute and merge).
void batchnorm_train_moments(const float* src, std::int64_t m, std::int64_t c, float* mean,
                             float* variance);
// dst = (src - mean) scale + beta per channel (scale = gamma rstd), plus residual (M, C) when not
// null, and max(0, dst) with `relu` (NaN passes). `parts` (or null) gets every part of dst as it
// is written: a consumer's quantization of dst without a read of its own.
void batchnorm_train_normalise(float* dst, const float* src, const float* mean, const float* scale,
                               const float* beta, std::int64_t m, std::int64_t c, bool relu,
                               const float* residual = nullptr,
                               PartwiseQuantizer<std::int16_t>* parts = nullptr);
// The residual input of a fused join (BatchNormConfig::residual) in backward: its gradient `diff`
// (M, C; null when not needed) is diff_dst masked by the ReLU, written or (accumulate) added to;
// the mask is read from the forward's output `dst`, which the residual is part of.
struct ResidualGrad {
    const float* dst = nullptr;
    float* diff = nullptr;
    bool accumulate = false;
};
// batchnorm_backward with batch statistics for a forward made by batchnorm_train_normalise:
// diff_src (when not null) is written, or added to with accumulate_src; diff_gamma and diff_beta
// are added to. With `relu` and no residual the mask is recomputed from src, mean, scale and beta,
// as the forward made it, instead of read from dst. `parts` (or null; only when diff_src is
// written) gets every part of diff_src as it is written. With `parts` and `finish`, diff_src is
// quantized only: each part is made in a buffer in cache for `parts`, then finish() (which calls
// parts' finish) says whether the quantizer took it all; if not, diff_src is written after all.
// Returns whether diff_src was quantized only (not written).
bool batchnorm_train_backward(float* diff_src, bool accumulate_src, float* diff_gamma,
                              float* diff_beta, const float* diff_dst, const float* src,
                              const float* mean, const float* rstd, const float* scale,
                              const float* beta, std::int64_t m, std::int64_t c, bool relu,
                              const ResidualGrad* residual = nullptr,
                              PartwiseQuantizer<std::int16_t>* parts = nullptr,
                              const std::function<bool()>& finish = {});

struct BatchNormConfig {
    std::int64_t channels = 0;
    float eps = 1e-5f;
    // running = (1 - momentum) running + momentum batch; the running variance uses the unbiased
    // batch variance (M / (M - 1)), as PyTorch and Caffe do.
    float momentum = 0.1f;
    // A ReLU fused into the layer, dst = max(0, BN(src)), as the paper's code fuses them: the
    // activation is written and read once instead of twice in each direction.
    bool relu = false;
    // A residual join fused into the layer: a second input of src's shape is added to the
    // normalised value, before the ReLU: dst = max(0, BN(src) + residual), ResNet's block output.
    // Against a batch-norm and then an Add, forward writes and rereads no intermediate tensor,
    // and backward hands the ReLU's gradient to both inputs while it sums for the batch-norm's
    // (7 activation-sized streams instead of 9; forward 4 instead of 6).
    bool residual = false;
};

// Train mode runs on the batchnorm_train_* passes above (oneDNN's batch normalisation, which this
// replaced, ran at a third to a half of the memory bandwidth on ResNet-50's tensors:
// BM_BatchNormRelu*); eval mode, backward after an eval forward and the synchronised form run the
// reference functions batchnorm_forward_stats and batchnorm_backward.
class BatchNorm2d : public Layer {
  public:
    BatchNorm2d(std::string name, const BatchNormConfig& config);
    ~BatchNorm2d() override;
    const char* kind() const override { return "batchnorm2d"; }
    bool fused_relu() const override { return config_.relu; }
    bool fused_residual() const { return config_.residual; }
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    // Train mode writes a fresh diff_src directly.
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;
    std::vector<Param*> params() override { return {&gamma_, &beta_}; }
    std::vector<NamedBuffer> buffers() override {
        return {{name() + ".running_mean", &running_mean_},
                {name() + ".running_var", &running_var_}};
    }

    // Synchronised batch normalisation, for data-parallel training (dist/): `sum` replaces, in
    // place, this process's per-channel sums by their total over all processes. Train mode then
    // normalises with the mean and variance of the global batch, and backward subtracts the global
    // means of its gradient terms. `gradients` says which sums a call carries: statistics of the
    // data (plain sums), or gradient terms (dist/ weights them as it weights gradients). Runs on
    // the reference functions. Null (the default): this process's batch alone.
    using SumAcrossProcesses = std::function<void(std::vector<double>& sums, bool gradients)>;
    void set_sum_across_processes(SumAcrossProcesses sum) { sum_ = std::move(sum); }
    // Train mode quantizes dst for the first consumer that asks (Layer::input_quantization) in
    // its normalising pass; whether the last forward did (the guessed exponent held).
    void add_consumer(Layer& later) override { consumers_.push_back(&later); }
    bool quantized_for_consumer() const { return quantized_for_consumer_; }
    // Train mode (not synchronised) takes the moments of src from the layer that writes it, when
    // that one adds them as it goes (Layer::input_moments).
    MomentBlocks* input_moments(const Layer& writer, const Shape& src, const Context& ctx) override;
    bool moments_from_input() const { return moments_from_input_; }  // the last forward took them
    // Train mode (not synchronised), writing a fresh gradient of src (the first input), quantizes
    // it in its last pass for the producer of src (Layer::output_gradient_quantization); whether
    // the last backward did (the guessed exponent held).
    void set_input_producer(Layer& earlier) override { producer_ = &earlier; }
    bool quantized_for_producer() const { return quantized_for_producer_; }

    Param& gamma() { return gamma_; }
    Param& beta() { return beta_; }
    // Running statistics (C): state saved with a checkpoint, not trained.
    std::vector<float>& running_mean() { return running_mean_; }
    std::vector<float>& running_var() { return running_var_; }

  private:
    // Throws unless src holds the input (and the residual, of its shape) with `channels` channels.
    void expect_inputs(Srcs src) const;
    void forward_synchronised(const Tensor& src, const float* residual, Tensor& dst);
    // rstd and the running statistics from mean_ and variance_ of a batch of `rows` values per
    // channel; false, with dst all NaN, when they are not finite.
    bool update_statistics(Tensor& dst, double rows);

    BatchNormConfig config_;
    Param gamma_, beta_;
    std::vector<float> running_mean_, running_var_;
    // Of the last forward: its mode and the statistics it normalised with (the variance in train
    // mode, rstd in eval mode).
    Mode mode_ = Mode::train;
    std::vector<float> mean_, variance_, rstd_;
    MomentBlocks moments_;  // of the last train-mode forward's src
    bool moments_from_input_ = false;
    std::vector<float> scale_;  // gamma rstd of the last train-mode forward, as it normalised
    SumAcrossProcesses sum_;
    double global_rows_ = 0;         // of the last synchronised forward: N*H*W over all processes
    std::vector<Layer*> consumers_;  // add_consumer
    bool quantized_for_consumer_ = false;  // by the last forward
    Layer* producer_ = nullptr;            // set_input_producer
    bool quantized_for_producer_ = false;  // by the last backward
    std::uint64_t iteration_ = 0;          // of the last forward: keys stochastic rounding
};

// Local response normalisation across channels (AlexNet, GoogLeNet-v1; Caffe's ACROSS_CHANNELS):
// dst_c = src_c / scale_c^beta, scale_c = k + alpha / size * sum of src_j^2 over the `size`
// channels j centred on c (clipped at the edges). dst, src are (M, C) with M = N*H*W.
struct LrnConfig {
    std::int64_t size = 5;  // odd
    float alpha = 1e-4f;
    float beta = 0.75f;
    float k = 1.0f;  // AlexNet uses 2, GoogLeNet-v1 (Caffe) 1
};

void lrn_forward(float* dst, const float* src, std::int64_t m, std::int64_t c,
                 const LrnConfig& config);
// diff_src (M, C) += the gradient, given diff_dst, dst, src (M, C). Recomputes scale rather than
// storing it (one activation-sized buffer less).
void lrn_backward(float* diff_src, const float* diff_dst, const float* dst, const float* src,
                  std::int64_t m, std::int64_t c, const LrnConfig& config);

// The same for beta = 0.75 with AVX-512 F (nn/avx512/lrn_avx512.cpp), within a few ulps of the
// tensor's largest value; backward writes diff_src, or adds to it with `accumulate`.
void lrn_forward_avx512(float* dst, const float* src, std::int64_t m, std::int64_t c,
                        const LrnConfig& config);
void lrn_backward_avx512(float* diff_src, bool accumulate, const float* diff_dst, const float* dst,
                         const float* src, std::int64_t m, std::int64_t c, const LrnConfig& config);

// With beta = 0.75 (AlexNet's and GoogLeNet's) on a CPU with AVX-512, runs lrn_forward_avx512 and
// lrn_backward_avx512. Otherwise on oneDNN's LRN (across channels, NHWC), created once per input
// shape and cached; a train mode forward keeps oneDNN's workspace for backward. lrn_forward and
// lrn_backward above are their reference; backward runs lrn_backward when the last forward left
// no workspace for src's shape (an eval-mode forward, or one of another shape) and for size 1
// (oneDNN 2.6.3 crashes there).
class Lrn : public Layer {
  public:
    Lrn(std::string name, const LrnConfig& config);
    ~Lrn() override;
    const char* kind() const override { return "lrn"; }
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    // Writes a fresh diff_src directly with lrn_backward_avx512 or oneDNN's backward (the
    // reference backward, after an eval forward or for size 1, adds into it zero-filled).
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;
    // Whether it runs lrn_forward_avx512 and lrn_backward_avx512 rather than oneDNN.
    bool runs_avx512() const { return avx512_; }

  private:
    struct OnednnPlan;  // in norm.cpp
    OnednnPlan& plan(const Shape& src);

    LrnConfig config_;
    bool avx512_;  // lrn_forward_avx512 and lrn_backward_avx512 apply
    std::map<Shape, std::unique_ptr<OnednnPlan>> plans_;  // by src shape (N, H, W, C)
    Shape workspace_shape_;  // of the last forward if it ran in train mode, else empty
    std::vector<float> diff_src_scratch_;  // oneDNN writes; layers add
};

}  // namespace dfp::nn
