#include "train/sgd.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "base/error.hpp"
#include "nn/layer.hpp"

namespace dfp::train {
namespace {

// Does x hold a NaN or an infinity? All exponent bits set: integer operations that vectorize
// (std::isfinite in a loop with an early exit runs one element at a time).
bool all_finite(const float* x, std::int64_t n) {
    std::uint32_t bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (n >= nn::kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint32_t bits = std::bit_cast<std::uint32_t>(x[i]);
        bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

}  // namespace

Sgd::Sgd(std::vector<nn::Param*> params, const SgdConfig& config)
    : params_(std::move(params)), config_(config) {
    if (!(config.momentum >= 0.0f && config.momentum < 1.0f) || !(config.weight_decay >= 0.0f))
        throw Error("sgd: needs 0 <= momentum < 1 and weight_decay >= 0, got momentum " +
                    std::to_string(config.momentum) + ", weight_decay " +
                    std::to_string(config.weight_decay));
    if (config.nesterov && config.momentum == 0.0f)
        throw Error("sgd: Nesterov momentum needs momentum > 0");
    for (const nn::Param* p : params_) {
        if (!p || p->grad.size() != p->value.size())
            throw Error("sgd: parameter " + (p ? "'" + p->name + "'" : std::string("(null)")) +
                        " has no gradient of its size");
        velocity_.emplace_back(p->value.size(), 0.0f);
    }
}

void Sgd::step(float lr, std::int64_t iteration) {
    for (nn::Param* p : params_) {
        p->settle_grad();  // zero_grad without a backward since (Param::clear_grad)
        if (all_finite(p->grad.data(), static_cast<std::int64_t>(p->grad.size()))) continue;
        for (std::size_t i = 0; i < p->grad.size(); ++i)  // name the first one
            if (!std::isfinite(p->grad[i]))
                throw Error("iteration " + std::to_string(iteration) + ": gradient of '" + p->name +
                            "' is " + std::to_string(p->grad[i]) + " at element " +
                            std::to_string(i) + "; training stopped before the update");
    }
    const float momentum = config_.momentum, decay = config_.weight_decay;
    for (std::size_t k = 0; k < params_.size(); ++k) {
        float* w = params_[k]->value.data();
        const float* grad = params_[k]->grad.data();
        float* v = velocity_[k].data();
        const auto n = static_cast<std::int64_t>(params_[k]->value.size());
        const bool nesterov = config_.nesterov;
#pragma omp parallel for simd schedule(static) if (n >= nn::kMinParallelElements)
        for (std::int64_t i = 0; i < n; ++i) {
            const float g = grad[i] + decay * w[i];
            v[i] = momentum * v[i] + g;
            w[i] -= lr * (nesterov ? g + momentum * v[i] : v[i]);
        }
    }
}

}  // namespace dfp::train
