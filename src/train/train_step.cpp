#include "train/train_step.hpp"

#include <cmath>
#include <string>

#include "base/error.hpp"
#include "nn/loss.hpp"
#include "nn/profile.hpp"

namespace dfp::train {

StepStats train_step(nn::Net& net, Sgd& sgd, const nn::Tensor& images, std::span<const int> labels,
                     float lr, std::int64_t iteration, GradientHook* hook) {
    const std::string at = "iteration " + std::to_string(iteration) + ": ";
    const std::string stopped = "; training stopped before the update";
    // A DFP16 layer meets a NaN or Inf when it quantizes (dfp::Error naming the tensor) before
    // the loss could show it; either way the message names the iteration.
    const auto named = [&](auto&& pass) {
        try {
            pass();
        } catch (const Error& e) {
            throw Error(at + e.what() + stopped);
        }
    };
    const nn::Tensor* logits = nullptr;
    named([&] {
        logits = &net.forward(images, {nn::Mode::train, static_cast<std::uint64_t>(iteration)});
    });
    nn::Tensor dlogits;
    const float loss = nn::profiled(
        nn::Section::loss, [&] { return nn::softmax_cross_entropy(*logits, labels, dlogits); });
    if (!std::isfinite(loss)) {
        const std::string layer = net.first_nonfinite_layer();
        throw Error(at + "loss is " + std::to_string(loss) +
                    (layer.empty() ? " (every layer's output is finite)"
                                   : "; first non-finite output: layer '" + layer + "'") +
                    stopped);
    }
    const std::int64_t correct =
        nn::profiled(nn::Section::loss, [&] { return nn::count_correct(*logits, labels); });
    net.zero_grad();
    named([&] {
        if (!hook) return net.backward(dlogits);
        net.backward(dlogits, [hook](nn::Layer& layer) { hook->layer_done(layer); });
        hook->finish();
    });
    nn::profiled(nn::Section::sgd_update, [&] { sgd.step(lr, iteration); });
    return {loss, correct};
}

void train_step_without_samples(nn::Net& net, Sgd& sgd, float lr, std::int64_t iteration,
                                GradientHook& hook) {
    net.zero_grad();
    try {
        hook.finish();
    } catch (const Error& e) {
        throw Error("iteration " + std::to_string(iteration) + ": " + e.what());
    }
    nn::profiled(nn::Section::sgd_update, [&] { sgd.step(lr, iteration); });
}

}  // namespace dfp::train
