// Stochastic gradient descent on the FP32 master weights, with momentum, weight decay and
// optional Nesterov momentum (PyTorch's formulation, dampening 0).
#pragma once

#include <cstdint>
#include <vector>

#include "nn/tensor.hpp"

namespace dfp::train {

struct SgdConfig {
    float momentum = 0.9f;
    float weight_decay = 0.0f;  // L2, on every parameter (as the paper's Caffe setup does)
    bool nesterov = false;      // needs momentum > 0
};

class Sgd {
  public:
    // Keeps the pointers: the parameters (e.g. Net::params()) must outlive the optimizer.
    Sgd(std::vector<nn::Param*> params, const SgdConfig& config);

    // One update with learning rate lr, per element of every parameter:
    //   g = grad + weight_decay * w
    //   v = momentum * v + g                  (v starts at 0)
    //   w -= lr * (nesterov ? g + momentum * v : v)
    // First checks that every gradient is finite: otherwise throws dfp::Error naming the
    // iteration, the parameter and the element, and no weight changes.
    void step(float lr, std::int64_t iteration);

    const std::vector<nn::Param*>& params() const { return params_; }
    // The momentum buffer of params()[i]: optimizer state for checkpoints.
    std::vector<float>& velocity(std::size_t i) { return velocity_[i]; }

  private:
    std::vector<nn::Param*> params_;
    SgdConfig config_;
    std::vector<std::vector<float>> velocity_;
};

}  // namespace dfp::train
