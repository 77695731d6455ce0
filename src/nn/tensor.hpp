// The values a network computes on: activation tensors and trainable parameters, both plain FP32.
#pragma once

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
    AlignedVector<float> data;  // cache-line aligned: kernels write whole lines

    Tensor() = default;
    explicit Tensor(Shape s) : shape(std::move(s)), data(shape_numel(shape)) {}
    // Keeps the allocation when the size does not grow, so a Net's buffers settle after one step.
    void resize(const Shape& s) {
        shape = s;
        data.resize(shape_numel(s));
    }
    std::size_t numel() const { return data.size(); }
};

// A trainable tensor: FP32 master values and their gradient, same shape, named
// "<layer>.<role>" (e.g. "conv1.weight"). Gradients accumulate; zeroing is explicit.
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
};

}  // namespace dfp::nn
