// Layers that join branches: residual Add and channel Concat.
#pragma once

#include <string>

#include "nn/layer.hpp"

namespace dfp::nn {

// dst = sum of two or more srcs of one shape.
class Add : public Layer {
  public:
    // relu: dst = max(0, sum) in the same pass, as the paper's code fuses the residual add with
    // its ReLU (one pass over the activation instead of two, each way).
    explicit Add(std::string name, bool relu = false) : Layer(std::move(name)), relu_(relu) {}
    const char* kind() const override { return "add"; }
    bool fused_relu() const override { return relu_; }
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;

  private:
    bool relu_;
};

// dst = srcs side by side along the last axis (channels, in NHWC); all other dimensions equal.
class Concat : public Layer {
  public:
    explicit Concat(std::string name) : Layer(std::move(name)) {}
    const char* kind() const override { return "concat"; }
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;

  private:
    // The shape of dst; throws dfp::Error when the srcs do not fit together.
    Shape joined_shape(Srcs src) const;
};

}  // namespace dfp::nn
