// A chain of integer layers and NITI's training step on it: forward, the integer cross-entropy
// gradient, backward and the integer update, all in integer arithmetic (the test
// integer.no_floating_point scans this engine's object code for floating-point instructions).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "integer/layers.hpp"
#include "integer/tensor.hpp"
#include "integer/update.hpp"

namespace dfp::integer {

class IntNet {
  public:
    void add(std::unique_ptr<IntLayer> layer);
    std::span<const std::unique_ptr<IntLayer>> layers() const { return layers_; }
    std::vector<Int8Weight*> weights();

    // Runs every layer on src and keeps the activations; returns the logits.
    const Int8Tensor& forward(const Int8Tensor& src);
    // After forward: back-propagates diff_dst = dL/d(logits) (no gradient for the input) and
    // keeps every layer's weight gradient.
    void backward(const Int8Tensor& diff_dst);
    // Applies the weight gradients of the last backward.
    void update(const UpdateRule& rule);

    // One training iteration; returns how many samples the logits (before the update) classified
    // correctly. The loss gradient's stochastic rounding is keyed by (seed, iteration).
    std::int64_t train_step(const Int8Tensor& images, std::span<const int> labels,
                            const UpdateRule& rule, std::uint64_t seed, std::uint64_t iteration);
    // The logits of the last forward.
    const Int8Tensor& output() const;

  private:
    std::vector<std::unique_ptr<IntLayer>> layers_;
    std::vector<Int8Tensor> values_;  // values_[i]: the output of layers_[i]
    Int8Tensor src_;                  // the last forward's input
    Int8Tensor grad_, grad_next_, loss_grad_;
};

}  // namespace dfp::integer
