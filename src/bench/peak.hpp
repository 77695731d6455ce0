// `dfptrain bench peak`: the multiply-add peaks of this machine, measured, per thread count: the
// yardsticks for "share of the INT16 VNNI peak" and for the 2x (INT16) and 4x (INT8) ratios to
// FP32 that the design assumes. A multiply-add counts 2 operations throughout.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dfp::bench {

struct PeakRecord {
    int threads = 0;
    double fp32_gflops = 0;  // vfmadd231ps zmm
    double s16_gops = 0;     // vpdpwssd zmm
    double s8_gops = 0;      // vpdpbusd zmm
};

// Runs each loop on every thread at once for about `seconds` per sample, `repetitions` samples,
// and keeps the median. Needs AVX512-VNNI (throws dfp::Error otherwise).
std::vector<PeakRecord> run_peak_bench(const std::vector<int>& threads, int repetitions,
                                       double seconds,
                                       const std::function<void(const PeakRecord&)>& on_record);
nlohmann::json peak_bench_json(const std::vector<PeakRecord>& records);

// The loops (bench/avx512_vnni/): `iterations` x 16 instructions on zmm registers.
float peak_fp32_fma_avx512(std::int64_t iterations);
std::int32_t peak_s16_dot_avx512_vnni(std::int64_t iterations);
std::int32_t peak_s8_dot_avx512_vnni(std::int64_t iterations);

}  // namespace dfp::bench
