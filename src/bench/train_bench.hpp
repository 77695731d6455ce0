// Side-by-side training-step benchmark (`dfptrain bench train`, issue 5): one network, one
// synthetic batch and the step `dfptrain train` runs (train::train_step: forward, loss, backward,
// SGD update), in each of several precision policies, interleaved within each repetition so that
// machine noise hits them alike; medians, the ratio to FP32, and each step's time broken down by
// kind of work (nn/profile.hpp: layer kinds and passes, quantization, the SGD update).
//
// One Net serves every policy (Net::apply_precision between samples): the same weights and data
// for all, and the memory of one network. The learning rate is 0: the step's work does not depend
// on it, every sample then computes the same step from the same weights (the integer GEMM's chain
// lengths depend on the data), and no long run can diverge and stop the benchmark.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/image_input.hpp"
#include "nn/profile.hpp"

namespace dfp::bench {

struct TrainBenchConfig {
    std::string model = "resnet50";
    models::ImageInput input = {224, 224, 3, 1000};  // e.g. models::natural_input(model)
    std::int64_t batch = 16;
    // precision::Policy specs, e.g. {"fp32", "dfp16,first=dfp16"}; the first all-FP32 one is the
    // reference of speedup_vs_fp32.
    std::vector<std::string> precisions = {"fp32", "dfp16"};
    int repetitions = 5;         // samples per precision; the median is reported
    int warmup = 2;              // untimed steps per precision before the first sample
    double min_sample_s = 0.05;  // a sample repeats the step until it lasts this long (>= 1 step)
};

// One layer's forward and backward, everything inside them included (quantization, GEMMs).
struct LayerTime {
    std::string name, kind;
    double ms = 0;  // per step, in the median sample
};

struct TrainBenchRecord {
    std::string model;
    models::ImageInput input;
    std::int64_t batch = 0;
    int threads = 0;  // OpenMP threads the steps ran on
    std::string precision;
    int dfp16_layers = 0, dfp8_layers = 0,
        gemm_layers = 0;      // conv/linear layers in DFP16, of all conv/linear
    double step_ms = 0;       // median over the samples, per step
    double images_per_s = 0;  // batch / step time
    // The reference's step_ms over this one's; empty when no precision is all FP32.
    std::optional<double> speedup_vs_fp32;
    // Each sample's ms per step in the order taken: round i ran sample i of every precision back
    // to back. The lowest and highest of the reference's sample over this one's, round by round:
    // how far the machine moved the ratio within the run.
    std::vector<double> sample_ms;
    std::optional<std::pair<double, double>> speedup_vs_fp32_rounds;
    // ms per step in each section, from the median sample (for an even count, the faster of the
    // two middle ones): the sections are exclusive, so they add up to at most step_ms.
    std::array<double, nn::kSections> breakdown_ms{};
    std::vector<LayerTime> layers;  // every layer, in the network's order, from the same sample
    int repetitions = 0, warmup = 0, steps_per_sample = 0;
    // Where it ran: cpu_name(), and the ISA of the integer kernels (the speed-up needs
    // avx512_vnni; on avx2 the integer layers are slower than FP32).
    std::string cpu, isa;

    double breakdown_sum_ms() const;
};

// Splits --precision's comma-separated list into policy specs. A policy spec has commas of its
// own, but its first item, and only that, is a bare "fp32" or "dfp16": each such item starts the
// next spec, e.g. "fp32,dfp16,first=dfp16" -> {"fp32", "dfp16,first=dfp16"}. Throws dfp::Error
// naming --precision for an empty list or one that does not start with fp32 or dfp16.
std::vector<std::string> split_precision_list(const std::string& list);

// Throws dfp::Error naming the option at fault (--model, --batch, --reps, --warmup, --precision;
// an input the model cannot take names the model) unless `config` can run.
void check_train_bench_config(const TrainBenchConfig& config);
// Checks the config as above, then measures; one record per precision, in the config's order.
std::vector<TrainBenchRecord> run_train_bench(const TrainBenchConfig& config);

// What `dfptrain bench train` prints: a header, then one column per precision; with top_layers > 0
// also the times of the top_layers layers that take longest in any precision.
std::string train_bench_table(const std::vector<TrainBenchRecord>& records, int top_layers = 0);
// The JSON array of --json: one object per record with the keys model, batch, threads, precision,
// step_ms, images_per_s, speedup_vs_fp32 (null without an FP32 reference) and breakdown_ms (an
// object keyed by nn::section_key) - a public interface, scripts read these names - and more that
// describe the run (input, classes, dfp16_layers, gemm_layers, repetitions, warmup,
// steps_per_sample, sample_ms, speedup_vs_fp32_rounds as [lowest, highest] or null, and
// layers_ms: an array of {name, kind, ms}, one per layer in order).
nlohmann::json train_bench_json(const std::vector<TrainBenchRecord>& records);

}  // namespace dfp::bench
