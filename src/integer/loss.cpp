#include "integer/loss.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "format/rng.hpp"
#include "format/rounding.hpp"

namespace dfp::integer {
namespace {

constexpr std::int64_t kLog2E = 47274;  // log2(e) * 2^15, rounded
constexpr int kLog2EFractionBits = 15;
constexpr int kLargestPower = 10;    // the largest logit becomes 2^10
constexpr int kTaylorExponent = -7;  // at or below: |logit| < 1, the Taylor series
constexpr int kSmallestExponent = -40;

std::int64_t classes_of(const Int8Tensor& logits, std::span<const int> labels) {
    const std::int64_t n = logits.shape.empty() ? 0 : static_cast<std::int64_t>(logits.shape[0]);
    if (n != static_cast<std::int64_t>(labels.size()) || n == 0)
        throw Error("integer cross-entropy: " + std::to_string(labels.size()) +
                    " labels for logits of shape " + shape_string(logits.shape));
    return static_cast<std::int64_t>(logits.numel()) / n;
}

// u_i of one sample (see loss.hpp).
void unnormalised(const std::int8_t* a, std::int64_t k, int exponent, std::int64_t* u) {
    if (exponent <= kTaylorExponent) {
        const int s = -std::max(exponent, kSmallestExponent);
        for (std::int64_t i = 0; i < k; ++i)
            u[i] = (std::int64_t{1} << (s + 1)) + 2 * std::int64_t{a[i]} +
                   ((std::int64_t{a[i]} * a[i]) >> s);
        return;
    }
    const std::int64_t amax = *std::max_element(a, a + k);
    const int shift = kLog2EFractionBits - exponent;  // > 0 unless exponent >= 15
    for (std::int64_t i = 0; i < k; ++i) {
        const std::int64_t x = (a[i] - amax) * kLog2E;  // <= 0; arithmetic shifts floor it
        const std::int64_t t =
            shift > 0 ? x >> std::min(shift, 62) : (x == 0 ? 0 : -(kLargestPower + 1));
        const std::int64_t power = std::max<std::int64_t>(t + kLargestPower, 0);
        u[i] = (std::int64_t{1} << power) - 1;
    }
}

}  // namespace

void cross_entropy_gradient(const Int8Tensor& logits, std::span<const int> labels,
                            std::uint64_t seed, Int8Tensor& diff) {
    const std::int64_t k = classes_of(logits, labels);
    diff.resize(logits.shape);
    diff.exponent = kLossGradientExponent;
    std::vector<std::int64_t> u(static_cast<std::size_t>(k));
    for (std::size_t n = 0; n < labels.size(); ++n) {
        if (labels[n] < 0 || labels[n] >= k)
            throw Error("integer cross-entropy: label " + std::to_string(labels[n]) +
                        " of sample " + std::to_string(n) + " is outside 0.." +
                        std::to_string(k - 1));
        const std::int64_t row = static_cast<std::int64_t>(n) * k;
        unnormalised(logits.data.data() + row, k, logits.exponent, u.data());
        std::int64_t sum = 0;
        for (const std::int64_t v : u) sum += v;  // >= 1023 (or >= k * 2^6): never 0
        for (std::int64_t i = 0; i < k; ++i) {
            const std::int64_t target = i == labels[n] ? std::int64_t{1} << kProbabilityBits : 0;
            const std::int64_t g = (u[i] << kProbabilityBits) / sum - target;
            const auto magnitude = static_cast<std::uint64_t>(g < 0 ? -g : g);
            const auto index = static_cast<std::uint64_t>(row + i);
            const auto m = std::min<std::int64_t>(
                static_cast<std::int64_t>(round_shift(
                    magnitude, kLossGradientShift, Rounding::stochastic, random_bits(seed, index))),
                kInt8Max);
            diff.data[static_cast<std::size_t>(row + i)] = static_cast<std::int8_t>(g < 0 ? -m : m);
        }
    }
}

std::int64_t count_correct(const Int8Tensor& logits, std::span<const int> labels) {
    const std::int64_t k = classes_of(logits, labels);
    std::int64_t correct = 0;
    for (std::size_t n = 0; n < labels.size(); ++n) {
        const std::int8_t* row = logits.data.data() + static_cast<std::int64_t>(n) * k;
        correct += std::max_element(row, row + k) - row == labels[n];
    }
    return correct;
}

}  // namespace dfp::integer
