// Timing for the side-by-side benchmarks (`dfptrain bench ...`): a sample repeats one call until
// it has run long enough for the clock, and a measurement is the median of several samples, so
// that one descheduled sample does not move it.
#pragma once

#include <chrono>
#include <vector>

namespace dfp::bench {

// The median of samples (the mean of the two middle ones for an even count); samples non-empty.
double median(std::vector<double> samples);

// Seconds per call of `call`, run `calls` times back to back.
template <typename Call>
double seconds_per_call(Call&& call, int calls) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) call();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return elapsed.count() / calls;
}

// How many calls of `one_call_s` seconds a sample needs to last at least `min_sample_s`.
int calls_per_sample(double one_call_s, double min_sample_s);

}  // namespace dfp::bench
