// One training iteration of a classification network: forward, loss, backward, SGD update, with
// the NaN/Inf checks that stop a run cleanly.
#pragma once

#include <cstdint>
#include <span>

#include "nn/net.hpp"
#include "train/sgd.hpp"

namespace dfp::train {

// Runs between backward and the update: data-parallel training (dist/) averages the gradients
// of all processes through it, so that every process applies the same update.
class GradientHook {
  public:
    virtual ~GradientHook() = default;
    // The gradients of layer's parameters are final for this step (called in backward order).
    virtual void layer_done(nn::Layer& layer) = 0;
    // Every gradient is final; on return they hold what the update must use.
    virtual void finish() = 0;
};

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
// A hook (if any) sees every layer's gradients as backward finishes them, and finishes before
// the update.
StepStats train_step(nn::Net& net, Sgd& sgd, const nn::Tensor& images, std::span<const int> labels,
                     float lr, std::int64_t iteration, GradientHook* hook = nullptr);

// The step of a process that has no samples in it (data-parallel training when the last batch
// holds fewer samples than processes): zero gradients through the hook, then the same update as
// every other process.
void train_step_without_samples(nn::Net& net, Sgd& sgd, float lr, std::int64_t iteration,
                                GradientHook& hook);

}  // namespace dfp::train
