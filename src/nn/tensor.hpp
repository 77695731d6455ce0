// The values a network computes on: activation tensors and trainable parameters, both plain FP32.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "base/aligned.hpp"
#include "format/format.hpp"

namespace dfp::nn {

// An activation or activation gradient: row-major FP32 data of `shape`. Feature maps are NHWC
// {N, H, W, C} (channels last, as DESIGN.md fixes); Linear produces {N, F}.
struct Tensor {
    Shape shape;
    // Cache-line aligned: kernels write whole lines. Zeroed by the constructor and resize(), not by
    // data.resize(), which Net's gradient pool uses on buffers that layers then write in full.
    UninitAlignedVector<float> data;

    Tensor() = default;
    explicit Tensor(Shape s) : shape(std::move(s)), data(shape_numel(shape), 0.0f) {}
    // Keeps the allocation when the size does not grow, so a Net's buffers settle after one step.
    void resize(const Shape& s) {
        shape = s;
        data.resize(shape_numel(s), 0.0f);
    }
    std::size_t numel() const { return data.size(); }
};

// A trainable tensor: FP32 master values and their gradient, same shape, named
// "<layer>.<role>" (e.g. "conv1.weight"). Gradients accumulate; zeroing is explicit.
//
// Zeroing is lazy: clear_grad() marks the gradient zero without writing grad, and the first
// layer to add into it stores instead (begin_grad()), so a step costs neither a pass of zeros
// nor a read of them; for AlexNet's and VGG-16's fully-connected weights (58M and 124M floats)
// those were two passes over the largest tensors of the step. Whoever reads grad calls
// settle_grad() first (Net::backward does, for every layer it runs).
struct Param {
    std::string name;
    Shape shape;
    std::vector<float> value;
    std::vector<float> grad;

    Param(std::string n, Shape s)
        : name(std::move(n)),
          shape(std::move(s)),
          value(shape_numel(shape)),
          grad(shape_numel(shape)) {}

    // The gradient is zero from now on, whatever grad holds.
    void clear_grad() { grad_zero_ = true; }
    // For a layer about to write its gradient: true when it must add into grad, false when it
    // must store it (grad counts as zero). Either way grad holds the gradient afterwards.
    bool begin_grad() { return !std::exchange(grad_zero_, false); }
    // grad with its zeros written out where clear_grad() left them unwritten: for code that can
    // only add (small gradients), and for readers.
    std::vector<float>& settle_grad() {
        if (std::exchange(grad_zero_, false)) std::fill(grad.begin(), grad.end(), 0.0f);
        return grad;
    }

  private:
    bool grad_zero_ = false;
};

}  // namespace dfp::nn
