#include "bench/peak.hpp"

#include <omp.h>

#include <atomic>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "bench/timing.hpp"

namespace dfp::bench {
namespace {

// Multiply-adds per loop iteration: 16 zmm instructions of 16 FP32 lanes, or of 16 INT32 lanes that
// each add 2 (INT16) or 4 (INT8) products.
constexpr double kFmaPerIteration = 16 * 16, kS16PerIteration = 16 * 32, kS8PerIteration = 16 * 64;

// Operations (2 per multiply-add) per second of `loop` run on `threads` threads at once.
template <typename Loop>
double rate(Loop loop, double macs_per_iteration, int threads, int repetitions, double seconds) {
    std::atomic<long long> sink{0};
    const auto run = [&](std::int64_t iterations) {
        return seconds_per_call(
            [&] {
#pragma omp parallel num_threads(threads)
                sink += static_cast<long long>(loop(iterations));
            },
            1);
    };
    // Size a sample from a short probe, then take the median of the samples.
    std::int64_t iterations = 1 << 16;
    const double probe = run(iterations);
    iterations = std::max<std::int64_t>(iterations, std::int64_t(iterations * seconds / probe));
    std::vector<double> samples;
    for (int r = 0; r < repetitions; ++r) samples.push_back(run(iterations));
    return 2.0 * macs_per_iteration * double(iterations) * threads / median(samples) * 1e-9;
}

}  // namespace

std::vector<PeakRecord> run_peak_bench(const std::vector<int>& threads, int repetitions,
                                       double seconds,
                                       const std::function<void(const PeakRecord&)>& on_record) {
    if (cpu_isa() < Isa::avx512_vnni)
        throw Error("bench peak: needs AVX512-VNNI, this CPU has at most " +
                    std::string(isa_name(cpu_isa())));
    std::vector<PeakRecord> out;
    for (int t : threads) {
        if (t < 1) throw Error("--threads: must be >= 1");
        PeakRecord r;
        r.threads = t;
        r.fp32_gflops = rate(peak_fp32_fma_avx512, kFmaPerIteration, t, repetitions, seconds);
        r.s16_gops = rate(peak_s16_dot_avx512_vnni, kS16PerIteration, t, repetitions, seconds);
        r.s8_gops = rate(peak_s8_dot_avx512_vnni, kS8PerIteration, t, repetitions, seconds);
        on_record(r);
        out.push_back(r);
    }
    return out;
}

nlohmann::json peak_bench_json(const std::vector<PeakRecord>& records) {
    nlohmann::json out = nlohmann::json::array();
    for (const PeakRecord& r : records)
        out.push_back({{"cpu", cpu_name()},
                       {"threads", r.threads},
                       {"fp32_fma_gflops", r.fp32_gflops},
                       {"s16_vpdpwssd_gops", r.s16_gops},
                       {"s8_vpdpbusd_gops", r.s8_gops},
                       {"s16_over_fp32", r.s16_gops / r.fp32_gflops},
                       {"s8_over_fp32", r.s8_gops / r.fp32_gflops}});
    return out;
}

}  // namespace dfp::bench
