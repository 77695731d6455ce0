#include "integer/update.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "integer/narrow.hpp"

namespace dfp::integer {

void update_weight(Int8Weight& w, const std::int32_t* grad, const UpdateRule& rule) {
    if (rule.mu < kMinMu || rule.mu > kMaxMu)
        throw Error("weight '" + w.name + "': mu must be " + std::to_string(kMinMu) + ".." +
                    std::to_string(kMaxMu) + ", got " + std::to_string(rule.mu));
    const auto n = static_cast<std::int64_t>(w.value.numel());
    const int bits = rule.mu + (rule.accumulator ? kAccumulatorFractionBits : 0);
    const int k = std::max(max_bit_length(grad, n) - bits, 0);
    std::int8_t* value = w.value.data.data();
    if (!rule.accumulator) {
        for (std::int64_t i = 0; i < n; ++i)
            value[i] = static_cast<std::int8_t>(std::clamp<std::int64_t>(
                value[i] - shift_pseudo_stochastic(grad[i], k), -kInt8Max, kInt8Max));
        return;
    }
    constexpr std::int64_t kAccumulatorMax = std::int64_t{kInt8Max} << kAccumulatorFractionBits;
    if (w.accumulator.size() != static_cast<std::size_t>(n)) {
        w.accumulator.resize(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i)
            w.accumulator[i] =
                static_cast<std::int16_t>(value[i] * (1 << kAccumulatorFractionBits));
    }
    for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t acc =
            std::clamp<std::int64_t>(w.accumulator[i] - shift_pseudo_stochastic(grad[i], k),
                                     -kAccumulatorMax, kAccumulatorMax);
        w.accumulator[i] = static_cast<std::int16_t>(acc);
        // |acc| <= 127 * 2^8, so the shifted value is at most 127 even when rounded up.
        value[i] = static_cast<std::int8_t>(shift_pseudo_stochastic(acc, kAccumulatorFractionBits));
    }
}

}  // namespace dfp::integer
