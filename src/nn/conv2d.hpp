// 2-D convolution over NHWC activations; weights (K, KH, KW, C) ("ohwi"), optional bias (K).
// FP32 runs on oneDNN primitives, created once per input shape and cached; DFP16 and DFP8 on the
// integer GEMM (nn/dfp_gemm.hpp), 1x1 stride-1 convolutions directly, others on patches made while
// the GEMM packs (nn/conv_lowering.hpp); block-scaled DFP8 (MXINT8) on explicit FP32 patches.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/dfp_gemm.hpp"
#include "nn/layer.hpp"

namespace dfp::nn {

template <class M>
struct PatchSource;

struct Conv2dConfig {
    std::int64_t in_channels = 0;
    std::int64_t out_channels = 0;
    std::int64_t kernel = 1;  // square KH = KW
    std::int64_t stride = 1;
    std::int64_t pad = 0;  // zeros on every side
    bool bias = true;
    // dst = max(0, convolution + bias), the ReLU fused (NaN and -0 pass, as relu_forward): DFP16
    // and DFP8 in the GEMM's epilogue, so the output is written once; FP32 in place after
    // oneDNN. Backward masks diff_dst where dst > 0.
    bool relu = false;
    precision::LayerPrecision precision = {};
};

// Sizes of one convolution problem; OH = (H + 2 pad - kernel) / stride + 1, likewise OW.
struct ConvGeometry {
    std::int64_t n, h, w, c;  // src (N, H, W, C)
    std::int64_t k;           // output channels
    std::int64_t kernel, stride, pad;
    std::int64_t oh, ow;  // dst (N, OH, OW, K)
};

class Conv2d : public Layer {
  public:
    Conv2d(std::string name, const Conv2dConfig& config);
    ~Conv2d() override;
    const char* kind() const override { return "conv2d"; }
    bool fused_relu() const override { return config_.relu; }

    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    // Writes a fresh diff_src directly: oneDNN's result, or the BPROP GEMM without loading C.
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;
    std::vector<Param*> params() override;
    const precision::LayerPrecision* precision() const override { return &config_.precision; }
    void set_precision(const precision::LayerPrecision& precision) override {
        config_.precision = precision;
    }

    // The first earlier Conv2d on the same input quantizes it for both: where its precision and
    // activation format are this one's, this layer reuses that quantized src in FPROP and WTGRAD.
    void add_input_sibling(Layer& earlier) override;
    QuantizationTarget input_quantization(const Shape& src) override;
    void add_consumer(Layer& later) override { consumers_.push_back(&later); }
    // DFP16 with a per-tensor gradient format and no fused ReLU (whose mask the quantization of
    // diff_dst applies), when one consumer alone makes the gradient: its diff_dst matrix.
    QuantizationTarget output_gradient_quantization(const Shape& dst) override;

    const Conv2dConfig& config() const { return config_; }
    Param& weight() { return weight_; }
    Param* bias() { return bias_ ? &*bias_ : nullptr; }
    // The geometry for src of this shape; throws dfp::Error naming the layer when it does not fit.
    ConvGeometry geometry(const Shape& src) const;

  private:
    struct OnednnPlan;  // oneDNN primitives for one (N, H, W), in conv2d.cpp
    OnednnPlan& plan(const ConvGeometry& g);
    void forward_fp32(const ConvGeometry& g, const float* src, float* dst);
    // diff_src (may be null) is added to, or written when `add` is false.
    void backward_fp32(const ConvGeometry& g, const float* src, const float* diff_dst,
                       float* diff_src, bool add);
    // The integer paths: DFP16 (M = int16) and DFP8 (M = int8). src (N*H*W, C; subsampled to
    // (N*OH*OW, C) when subsamples_src) and the weights (K, KH*KW*C) as forward quantized them,
    // reused by backward; the weights flipped for a BPROP convolution; diff_dst (N*OH*OW, K).
    template <class M>
    struct Quantized {
        QuantMatrix<M> src, weight, weight_flip, diff_dst;
    };
    template <class M>
    Quantized<M>& quantized();
    template <class M>
    const Quantized<M>& quantized() const {
        return const_cast<Conv2d*>(this)->quantized<M>();
    }
    // The sibling's quantized src when it holds this forward's src (rows, cols) in this layer's
    // format and step, else null.
    template <class M>
    const QuantMatrix<M>* sibling_src(const float* src, std::int64_t rows, std::int64_t cols) const;
    // The src FPROP multiplied and WTGRAD multiplies: q.src, or the sibling's.
    template <class M>
    const QuantMatrix<M>& forward_src() const;
    // moments: a consumer's (Layer::input_moments), added as the FPROP GEMM finishes dst, or null.
    template <class M>
    void forward_dfp(const ConvGeometry& g, const float* src, float* dst, MomentBlocks* moments);
    // keep: the fused ReLU's output, by which diff_dst is masked, or null.
    template <class M>
    void backward_dfp(const ConvGeometry& g, const float* diff_dst, const float* keep,
                      float* diff_src, bool add);
    // The src operand of FPROP and WTGRAD: q.src itself for a direct GEMM or a subsampled src,
    // else its patches.
    template <class M>
    DfpOperand<M> gemm_src(const char* pass, const ConvGeometry& g, const QuantMatrix<M>& src,
                           const PatchSource<M>& patches) const;

    Conv2dConfig config_;
    Param weight_;
    std::optional<Param> bias_;
    std::map<std::array<std::int64_t, 3>, std::unique_ptr<OnednnPlan>> plans_;
    std::vector<float> diff_src_scratch_;  // oneDNN's BPROP output when diff_src is added to
    Quantized<std::int16_t> q16_;
    Quantized<std::int8_t> q8_;
    // DFP8 with block formats (MXINT8): every GEMM operand has its blocks along that GEMM's K, so
    // each pass quantizes its own operands from FP32 (the patch matrix, or a transpose): the
    // weights transposed for BPROP, diff_dst transposed and the patches transposed for WTGRAD.
    void forward_block_scaled(const ConvGeometry& g, const float* src, float* dst);
    void backward_block_scaled(const ConvGeometry& g, const float* src, const float* diff_dst,
                               float* diff_src, bool add);
    QuantMatrix<std::int8_t> weight_t_q_, diff_dst_t_q_, src_t_q_;
    // Forward's FP32 patch matrix: reused by WTGRAD (block-scaled), or the subsampled src that
    // DFP16 and DFP8 quantize (subsamples_src).
    std::vector<float> patches_;
    std::uint64_t iteration_ = 0;  // of the last forward: keys stochastic rounding, backward too
    const Conv2d* src_sibling_ = nullptr;  // add_input_sibling
    bool src_from_sibling_ = false;        // the last forward used the sibling's src
    std::vector<Layer*> consumers_;        // add_consumer
    // A strided BPROP's phases before scatter_phases, or its patch gradients before col2im_add.
    std::vector<float> diff_col_;
    std::vector<float> relu_diff_;  // FP32 and MXINT8 with a fused ReLU: diff_dst where dst > 0
};

}  // namespace dfp::nn
