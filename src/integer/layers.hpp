// NITI's integer layers: every src, dst and gradient an Int8Tensor (one exponent per tensor),
// every product on the exact int8 GEMM (kernels::gemm_s8s8s32) with INT32 results narrowed to
// int8 (integer/narrow.hpp). Convolution and linear have no bias (NITI's layers have none); ReLU
// and max-pool work on the int8 values directly and keep the exponent.
//
// A layer's forward keeps what its backward needs; backward computes diff_src (when asked) with
// the weights of forward, and keeps the INT32 weight gradient for update(), which the net calls
// after the whole backward pass.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "integer/tensor.hpp"
#include "integer/update.hpp"

namespace dfp::integer {

class IntLayer {
  public:
    explicit IntLayer(std::string name) : name_(std::move(name)) {}
    virtual ~IntLayer() = default;
    IntLayer(const IntLayer&) = delete;
    IntLayer& operator=(const IntLayer&) = delete;

    const std::string& name() const { return name_; }
    virtual const char* kind() const = 0;
    // dst (resized here) from src. Throws dfp::Error naming the layer when src does not fit.
    virtual void forward(const Int8Tensor& src, Int8Tensor& dst) = 0;
    // After forward on the same src and dst: diff_src (when non-null; resized here) from diff_dst.
    virtual void backward(const Int8Tensor& src, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                          Int8Tensor* diff_src) = 0;
    // Applies the weight gradient of the last backward (layers with weights only).
    virtual void update(const UpdateRule& /*rule*/) {}
    virtual Int8Weight* weight() { return nullptr; }
    // The exact INT32 weight gradient of the last backward, exponent src + diff_dst exponents
    // (empty for layers without weights).
    virtual std::span<const std::int32_t> weight_gradient() const { return {}; }

  protected:
    [[noreturn]] void fail(const std::string& what) const;

  private:
    std::string name_;
};

struct ConvGeometry;  // the sizes of one convolution problem (layers.cpp)

struct IntConvConfig {
    std::int64_t in_channels = 0, out_channels = 0;
    std::int64_t kernel = 1, stride = 1, pad = 0;  // square kernel, zeros on every side
};

// Convolution over NHWC; weights (K, KH, KW, C) as nn::Conv2d's. FPROP multiplies the explicit
// patch matrix (N*OH*OW, KH*KW*C) by the weights; WTGRAD multiplies diff_dst^T by the same
// patches. BPROP of a stride-1 convolution is a convolution of diff_dst with the flipped weights;
// of a strided one, diff_dst times the weights gives INT32 patch gradients that col2im sums onto
// the pixels. Both are exact in INT32 before the narrowing.
class IntConv2d : public IntLayer {
  public:
    IntConv2d(std::string name, const IntConvConfig& config, Int8Weight weight);
    const char* kind() const override { return "conv2d"; }
    void forward(const Int8Tensor& src, Int8Tensor& dst) override;
    void backward(const Int8Tensor& src, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                  Int8Tensor* diff_src) override;
    void update(const UpdateRule& rule) override;
    Int8Weight* weight() override { return &weight_; }
    std::span<const std::int32_t> weight_gradient() const override { return grad_; }

  private:
    void backward_data_as_convolution(const ConvGeometry& g, const Int8Tensor& diff_dst);
    void backward_data_by_col2im(const ConvGeometry& g, const Int8Tensor& diff_dst);

    IntConvConfig config_;
    Int8Weight weight_;
    std::vector<std::int8_t> col_;  // patches of the last forward
    std::vector<std::int8_t> flipped_, col_bprop_;
    std::vector<std::int32_t> acc_, grad_, pixels_;
};

// dst (N, O) = src (N, I) wei^T, src any {N, ...} flattened per sample (NHWC order); wei (O, I).
class IntLinear : public IntLayer {
  public:
    IntLinear(std::string name, Int8Weight weight);
    const char* kind() const override { return "linear"; }
    void forward(const Int8Tensor& src, Int8Tensor& dst) override;
    void backward(const Int8Tensor& src, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                  Int8Tensor* diff_src) override;
    void update(const UpdateRule& rule) override;
    Int8Weight* weight() override { return &weight_; }
    std::span<const std::int32_t> weight_gradient() const override { return grad_; }
    // The exact INT32 dst of the last forward before its narrowing, exponent src + weight
    // exponents (until backward reuses the buffer): a classifier's scores without int8 ties.
    std::span<const std::int32_t> dst_int32() const { return acc_; }
    int dst_int32_exponent() const { return acc_exponent_; }

  private:
    Int8Weight weight_;
    std::vector<std::int32_t> acc_, grad_;
    int acc_exponent_ = 0;
};

class IntRelu : public IntLayer {
  public:
    using IntLayer::IntLayer;
    const char* kind() const override { return "relu"; }
    void forward(const Int8Tensor& src, Int8Tensor& dst) override;
    void backward(const Int8Tensor& src, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                  Int8Tensor* diff_src) override;
};

// Unpadded windows, output side floor((side - kernel) / stride) + 1; kernel <= 16, so that a
// window position fits a byte.
inline constexpr std::int64_t kMaxPoolKernel = 16;
struct IntPoolConfig {
    std::int64_t kernel = 2, stride = 2;
};

// Max-pool over NHWC windows (the first maximum wins); backward routes each gradient to its
// window's maximum, summing in INT32 where windows overlap, then narrows.
class IntMaxPool2d : public IntLayer {
  public:
    IntMaxPool2d(std::string name, const IntPoolConfig& config);
    const char* kind() const override { return "maxpool2d"; }
    void forward(const Int8Tensor& src, Int8Tensor& dst) override;
    void backward(const Int8Tensor& src, const Int8Tensor& dst, const Int8Tensor& diff_dst,
                  Int8Tensor* diff_src) override;

  private:
    IntPoolConfig config_;
    std::vector<std::uint8_t> argmax_;  // window position r * kernel + s of each dst element
    std::vector<std::int32_t> acc_;
};

}  // namespace dfp::integer
