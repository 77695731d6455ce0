// Fully connected layer: dst (N, O) = src (N, I) wei^T + bias, where src is any {N, ...} tensor
// flattened per sample (NHWC order); wei (O, I), bias (O) optional. FP32 runs on oneDNN's sgemm;
// DFP16 and DFP8 on the integer GEMM (nn/dfp_gemm.hpp) with the bias added in FP32.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nn/dfp_gemm.hpp"
#include "nn/layer.hpp"

namespace dfp::nn {

struct LinearConfig {
    std::int64_t in_features = 0;
    std::int64_t out_features = 0;
    bool bias = true;
    precision::LayerPrecision precision = {};
};

class Linear : public Layer {
  public:
    Linear(std::string name, const LinearConfig& config);
    const char* kind() const override { return "linear"; }

    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    std::vector<Param*> params() override;
    const precision::LayerPrecision* precision() const override { return &config_.precision; }
    void set_precision(const precision::LayerPrecision& precision) override {
        config_.precision = precision;
    }

    Param& weight() { return weight_; }
    Param* bias() { return bias_ ? &*bias_ : nullptr; }

  private:
    // The batch size of src; throws dfp::Error when it does not hold N x in_features values.
    std::int64_t batch(const Tensor& src) const;

    LinearConfig config_;
    Param weight_;
    std::optional<Param> bias_;
    // The integer paths (DFP16: M = int16, DFP8: int8): the operands as last quantized. src and
    // weight from forward, reused by backward.
    template <class M>
    struct Quantized {
        QuantMatrix<M> src, weight, diff_dst;
    };
    template <class M>
    void forward_dfp(const Tensor& src, Tensor& dst, std::int64_t n, Quantized<M>& q);
    template <class M>
    void backward_dfp(const Tensor& diff_dst, Tensor* diff_src, std::int64_t n, Quantized<M>& q);
    void backward_block_scaled(const Tensor& src, const Tensor& diff_dst, Tensor* diff_src,
                               std::int64_t n);
    Quantized<std::int16_t> q16_;
    Quantized<std::int8_t> q8_;
    // DFP8 with block formats (MXINT8): backward's operands with their blocks along the
    // reduction, the weights transposed for BPROP, diff_dst and src transposed for WTGRAD.
    QuantMatrix<std::int8_t> weight_t_q_, diff_dst_t_q_, src_t_q_;
    std::uint64_t iteration_ = 0;  // of the last forward: keys stochastic rounding, backward too
    std::vector<float> dst_t_;     // FP32 forward: dst transposed (out, N)
};

}  // namespace dfp::nn
