#include "bench/timing.hpp"

#include <algorithm>
#include <cmath>

namespace dfp::bench {

double median(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    const std::size_t half = samples.size() / 2;
    return samples.size() % 2 ? samples[half] : 0.5 * (samples[half - 1] + samples[half]);
}

int calls_per_sample(double one_call_s, double min_sample_s) {
    // A call measured at 0 s (below the clock's resolution) counts as 1 ns.
    constexpr double kShortestCall_s = 1e-9;
    return std::max(
        1, static_cast<int>(std::ceil(min_sample_s / std::max(one_call_s, kShortestCall_s))));
}

}  // namespace dfp::bench
