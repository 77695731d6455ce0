// One training iteration of a classification network: forward, loss, backward, SGD update, with
// the NaN/Inf checks that stop a run cleanly.
#pragma once

#include <cstdint>
#include <span>

#include "nn/net.hpp"
#include "train/sgd.hpp"

namespace dfp::train {

struct StepStats {
    float loss;            // mean softmax cross-entropy over the batch, before the update
    std::int64_t correct;  // samples whose largest logit is their label, before the update
};

// Forward in train mode (ctx.iteration = iteration), softmax cross-entropy against labels,
// zero_grad, backward, sgd.step(lr). sgd must update net's parameters. A NaN or Inf loss throws
// dfp::Error naming the iteration and the first layer whose output is not finite (or the loss
// itself); a NaN or Inf gradient throws from Sgd::step naming the parameter; a dfp::Error from
// forward or backward (e.g. a DFP16 layer quantizing a NaN, naming the tensor) is thrown again
// with the iteration named. In every case the weights keep their values from before this iteration.
StepStats train_step(nn::Net& net, Sgd& sgd, const nn::Tensor& images, std::span<const int> labels,
                     float lr, std::int64_t iteration);

}  // namespace dfp::train
