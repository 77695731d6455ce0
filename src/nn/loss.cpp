#include "nn/loss.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.hpp"
#include "nn/layer.hpp"

namespace dfp::nn {

namespace {

// The number of classes K of logits {N, ...} with N = labels.size(); checks every label.
std::int64_t classes(const Tensor& logits, std::span<const int> labels, const char* who) {
    if (logits.shape.empty() || logits.shape[0] != labels.size() || logits.numel() == 0)
        throw Error(std::string(who) + ": logits of shape " + shape_string(logits.shape) +
                    " do not match " + std::to_string(labels.size()) + " labels");
    const auto k = static_cast<std::int64_t>(logits.numel() / logits.shape[0]);
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= k)
            throw Error(std::string(who) + ": label " + std::to_string(labels[i]) + " of sample " +
                        std::to_string(i) + " is outside [0, " + std::to_string(k) + ")");
    return k;
}

}  // namespace

float softmax_cross_entropy(const Tensor& logits, std::span<const int> labels, Tensor& dlogits) {
    const std::int64_t k = classes(logits, labels, "softmax_cross_entropy");
    const auto n = static_cast<std::int64_t>(labels.size());
    dlogits.resize(logits.shape);
    double loss = 0.0;
#pragma omp parallel for reduction(+ : loss) schedule(static) if (n * k >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i) {
        const float* z = logits.data.data() + i * k;
        float* dz = dlogits.data.data() + i * k;
        // Shifted by the maximum so exp never overflows; log-sum-exp in double.
        const float z_max = *std::max_element(z, z + k);
        double sum = 0.0;
        for (std::int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(z[j] - z_max));
        const double log_sum = std::log(sum);
        loss += log_sum - (z[labels[i]] - z_max);
        for (std::int64_t j = 0; j < k; ++j)
            dz[j] = static_cast<float>(
                (std::exp(static_cast<double>(z[j] - z_max) - log_sum) - (j == labels[i])) / n);
    }
    return static_cast<float>(loss / n);
}

std::int64_t count_correct(const Tensor& logits, std::span<const int> labels) {
    const std::int64_t k = classes(logits, labels, "count_correct");
    std::int64_t correct = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const float* z = logits.data.data() + i * k;
        correct += std::max_element(z, z + k) - z == labels[i];
    }
    return correct;
}

}  // namespace dfp::nn
