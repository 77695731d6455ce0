#include "bench/train_bench.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <span>
#include <tuple>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "bench/timing.hpp"
#include "data/classification.hpp"
#include "models/registry.hpp"
#include "precision/policy.hpp"
#include "train/evaluate.hpp"
#include "train/memory.hpp"
#include "train/sgd.hpp"
#include "train/train_step.hpp"

namespace dfp::bench {
namespace {

constexpr double kMsPerSecond = 1e3;
// `dfptrain train`'s defaults: the update's cost does not depend on them, but the same values keep
// the step the same one.
constexpr train::SgdConfig kSgd = {0.9f, 5e-4f, false};
// See the header: the work of a step does not depend on the learning rate.
constexpr float kLearningRate = 0.0f;

bool is_base_item(const std::string& item) {
    return item == "fp32" || item == "dfp16" || item == "dfp8";
}

// One sample: `steps` steps back to back, with the profiler attached.
struct Sample {
    double step_s;
    std::array<double, nn::kSections> section_s;  // per step
    std::vector<double> layer_s;                  // per step, by Net node
};

class Bench {
  public:
    Bench(const TrainBenchConfig& c, std::vector<precision::Policy> policies)
        : net_(models::build(c.model, c.input)),
          sgd_(net_.params(), kSgd),
          policies_(std::move(policies)) {
        train::check_batch_fits(net_, c.input, c.batch, c.batch, train::available_memory());
        // The data `train --data synthetic:...` uses: class prototypes plus noise, standardized.
        data::TrainTest d = data::make_synthetic(c.input.channels, c.input.height, c.input.width,
                                                 c.input.classes, c.batch, 1);
        data::standardize(d);
        std::vector<std::int64_t> indices(static_cast<std::size_t>(c.batch));
        std::iota(indices.begin(), indices.end(), 0);
        images_ = train::image_batch(d.train, indices, labels_);
    }

    void use(std::size_t precision) { net_.apply_precision(policies_.at(precision)); }

    // Seconds per step of `steps` steps, unprofiled (warm-up).
    double run(int steps) {
        return seconds_per_call([&] { step(); }, steps);
    }

    Sample sample(int steps) {
        nn::Profiler profiler;
        const nn::ActiveProfiler attach(profiler);
        // What no inner section claims (zeroing gradients, train_step's own work) is "other", so
        // the sections add up to the whole sample.
        const double seconds = seconds_per_call(
            [&] {
                const nn::ProfileScope root(&profiler, nn::Section::other);
                step();
            },
            steps);
        Sample s{seconds, {}, {}};
        for (int i = 0; i < nn::kSections; ++i)
            s.section_s[i] = profiler.seconds(static_cast<nn::Section>(i)) / steps;
        for (const double seconds : profiler.layer_seconds()) s.layer_s.push_back(seconds / steps);
        return s;
    }

    // The layers' names and kinds with their times in `s`.
    std::vector<LayerTime> layer_times(const Sample& s) {
        std::vector<LayerTime> out;
        for (int i = 1; i < net_.nodes(); ++i) {
            const double seconds =
                std::size_t(i) < s.layer_s.size() ? s.layer_s[std::size_t(i)] : 0.0;
            out.push_back({net_.layer(i).name(), net_.layer(i).kind(), seconds * kMsPerSecond});
        }
        return out;
    }

    // Conv/linear layers in DFP16 and in DFP8 under the precision in use, and all of them.
    std::tuple<int, int, int> integer_layers() {
        int dfp16 = 0, dfp8 = 0, all = 0;
        for (int i = 1; i < net_.nodes(); ++i) {
            const precision::LayerPrecision* p = net_.layer(i).precision();
            if (!p) continue;
            ++all;
            dfp16 += p->compute == precision::Compute::dfp16;
            dfp8 += p->compute == precision::Compute::dfp8;
        }
        return {dfp16, dfp8, all};
    }

  private:
    void step() { train::train_step(net_, sgd_, images_, labels_, kLearningRate, iteration_++); }

    nn::Net net_;
    train::Sgd sgd_;
    std::vector<precision::Policy> policies_;
    nn::Tensor images_;
    std::vector<int> labels_;
    std::int64_t iteration_ = 0;
};

}  // namespace

double TrainBenchRecord::breakdown_sum_ms() const {
    return std::accumulate(breakdown_ms.begin(), breakdown_ms.end(), 0.0);
}

std::vector<std::string> split_precision_list(const std::string& list) {
    std::vector<std::string> specs;
    std::size_t begin = 0;
    while (begin <= list.size()) {
        const std::size_t end = std::min(list.find(',', begin), list.size());
        const std::string item = list.substr(begin, end - begin);
        if (is_base_item(item))
            specs.push_back(item);
        else if (specs.empty())
            throw Error(
                "--precision: expected a comma-separated list of precision specs, each "
                "starting with fp32, dfp16 or dfp8 (e.g. fp32,dfp16), got '" +
                list + "'");
        else
            specs.back() += "," + item;
        begin = end + 1;
    }
    return specs;
}

void check_train_bench_config(const TrainBenchConfig& c) {
    try {
        models::check_name(c.model);
    } catch (const Error& e) {
        throw Error(std::string("--model: ") + e.what());
    }
    if (c.batch < 1) throw Error("--batch must be >= 1, got " + std::to_string(c.batch));
    if (c.repetitions < 1) throw Error("--reps must be >= 1, got " + std::to_string(c.repetitions));
    if (c.warmup < 0) throw Error("--warmup must be >= 0, got " + std::to_string(c.warmup));
    if (c.precisions.empty()) throw Error("--precision: no precision to measure");
    models::check_input(c.input, c.model);
    for (const std::string& spec : c.precisions) precision::Policy::parse(spec);
}

std::vector<TrainBenchRecord> run_train_bench(const TrainBenchConfig& config) {
    check_train_bench_config(config);
    std::vector<precision::Policy> policies;
    for (const std::string& spec : config.precisions)
        policies.push_back(precision::Policy::parse(spec));
    Bench bench(config, std::move(policies));
    const std::size_t count = config.precisions.size();

    // Warm-up: oneDNN primitives and DFP16 buffers are made on a layer's first step. The fastest
    // precision's last warm-up step sizes the samples, the same number of steps for all.
    double fastest_s = 0;
    for (int w = 0; w < config.warmup; ++w)
        for (std::size_t p = 0; p < count; ++p) {
            bench.use(p);
            const double s = bench.run(1);
            if (w == config.warmup - 1) fastest_s = p == 0 ? s : std::min(fastest_s, s);
        }
    const int steps = config.warmup > 0 ? calls_per_sample(fastest_s, config.min_sample_s) : 1;

    std::vector<std::vector<Sample>> samples(count);
    for (int r = 0; r < config.repetitions; ++r)
        for (std::size_t p = 0; p < count; ++p) {
            bench.use(p);
            samples[p].push_back(bench.sample(steps));
        }

    std::vector<TrainBenchRecord> records;
    for (std::size_t p = 0; p < count; ++p) {
        TrainBenchRecord r;
        r.model = config.model;
        r.input = config.input;
        r.batch = config.batch;
        r.threads = omp_get_max_threads();
        r.precision = config.precisions[p];
        bench.use(p);
        std::tie(r.dfp16_layers, r.dfp8_layers, r.gemm_layers) = bench.integer_layers();
        std::vector<Sample>& s = samples[p];
        std::vector<double> step_s;
        for (const Sample& one : s) step_s.push_back(one.step_s);
        for (double one : step_s) r.sample_ms.push_back(one * kMsPerSecond);
        r.step_ms = median(step_s) * kMsPerSecond;
        r.images_per_s = static_cast<double>(config.batch) / (r.step_ms / kMsPerSecond);
        // The lower middle sample is the median for an odd count and no slower than it for an
        // even one, so its breakdown (which adds up to its own time) stays within step_ms.
        std::sort(s.begin(), s.end(),
                  [](const Sample& a, const Sample& b) { return a.step_s < b.step_s; });
        const Sample& middle = s[(s.size() - 1) / 2];
        for (int i = 0; i < nn::kSections; ++i)
            r.breakdown_ms[i] = middle.section_s[i] * kMsPerSecond;
        r.layers = bench.layer_times(middle);
        r.repetitions = config.repetitions;
        r.warmup = config.warmup;
        r.cpu = cpu_name();
        r.isa = isa_name(active_isa());
        r.steps_per_sample = steps;
        records.push_back(r);
    }
    // The reference: the first all-FP32 precision.
    const auto reference = std::find_if(records.begin(), records.end(), [](const auto& r) {
        return r.dfp16_layers == 0 && r.dfp8_layers == 0;
    });
    if (reference != records.end())  // the loop below writes only the speed-up fields
        for (TrainBenchRecord& r : records) {
            r.speedup_vs_fp32 = reference->step_ms / r.step_ms;
            std::vector<double> rounds;
            for (std::size_t i = 0; i < r.sample_ms.size(); ++i)
                rounds.push_back(reference->sample_ms[i] / r.sample_ms[i]);
            const auto [lo, hi] = std::minmax_element(rounds.begin(), rounds.end());
            r.speedup_vs_fp32_rounds = std::pair{*lo, *hi};
        }
    return records;
}

std::string train_bench_table(const std::vector<TrainBenchRecord>& records, int top_layers) {
    if (records.empty()) return "";
    const TrainBenchRecord& first = records.front();
    std::string out;
    char line[512];
    const auto add = [&](const char* format, auto... args) {
        std::snprintf(line, sizeof line, format, args...);
        out += line;
    };
    add("dfptrain bench train: %s, input %s, batch %lld, %d thread(s); medians of %d samples of "
        "%d step(s) each after %d warm-up step(s), precisions interleaved\n",
        first.model.c_str(), models::input_string(first.input).c_str(),
        static_cast<long long>(first.batch), first.threads, first.repetitions,
        first.steps_per_sample, first.warmup);
    add("  %s, integer kernels %s%s\n", first.cpu.c_str(), first.isa.c_str(),
        first.isa == isa_name(Isa::avx512_vnni) ? ""
                                                : " (no VNNI: integer layers slower than FP32)");
    for (const TrainBenchRecord& r : records)
        add("  %s: %d of %d conv/linear layers in DFP16, %d in DFP8\n", r.precision.c_str(),
            r.dfp16_layers, r.gemm_layers, r.dfp8_layers);
    if (std::none_of(records.begin(), records.end(),
                     [](const TrainBenchRecord& r) { return r.speedup_vs_fp32.has_value(); }))
        add("  (no all-FP32 precision listed: no speed-up vs fp32)\n");

    // The layers to show: the top_layers slowest, by their largest time in any precision.
    std::vector<std::size_t> shown(first.layers.size());
    std::iota(shown.begin(), shown.end(), std::size_t{0});
    const auto slowest = [&](std::size_t i) {
        double ms = 0;
        for (const TrainBenchRecord& r : records) ms = std::max(ms, r.layers.at(i).ms);
        return ms;
    };
    std::stable_sort(shown.begin(), shown.end(),
                     [&](std::size_t a, std::size_t b) { return slowest(a) > slowest(b); });
    shown.resize(std::min(shown.size(), std::size_t(std::max(top_layers, 0))));

    constexpr int kMinLabelWidth = 20, kMinColumn = 10;
    int label_width = kMinLabelWidth;
    for (const std::size_t i : shown)
        label_width = std::max(label_width, static_cast<int>(first.layers[i].name.size()) + 3);
    std::vector<int> width;
    for (const TrainBenchRecord& r : records)
        width.push_back(std::max<int>(kMinColumn, static_cast<int>(r.precision.size())));
    const auto row = [&](const char* label, auto cell) {
        add("%-*s", label_width, label);
        for (std::size_t i = 0; i < records.size(); ++i) {
            const std::string text = cell(records[i]);
            add(" %*s", width[i], text.c_str());
        }
        out += "\n";
    };
    const auto number = [](double v, const char* format) {
        char buf[64];
        std::snprintf(buf, sizeof buf, format, v);
        return std::string(buf);
    };
    out += "\n";
    row("", [](const TrainBenchRecord& r) { return r.precision; });
    row("step ms", [&](const TrainBenchRecord& r) { return number(r.step_ms, "%.2f"); });
    row("images/s", [&](const TrainBenchRecord& r) { return number(r.images_per_s, "%.1f"); });
    row("speed-up vs fp32", [&](const TrainBenchRecord& r) {
        return r.speedup_vs_fp32 ? number(*r.speedup_vs_fp32, "%.2f") : std::string("-");
    });
    row("  lowest-highest round", [&](const TrainBenchRecord& r) {
        if (!r.speedup_vs_fp32_rounds) return std::string("-");
        return number(r.speedup_vs_fp32_rounds->first, "%.2f") + "-" +
               number(r.speedup_vs_fp32_rounds->second, "%.2f");
    });
    out += "ms per step, by kind (median sample):\n";
    for (int i = 0; i < nn::kSections; ++i) {
        const std::string label =
            std::string("  ") + nn::section_label(static_cast<nn::Section>(i));
        row(label.c_str(), [&](const TrainBenchRecord& r) {
            // Exactly zero: nothing of that kind ran (e.g. quantization in FP32).
            return r.breakdown_ms[i] == 0 ? std::string("-") : number(r.breakdown_ms[i], "%.2f");
        });
    }
    row("  sum of the lines",
        [&](const TrainBenchRecord& r) { return number(r.breakdown_sum_ms(), "%.2f"); });
    out +=
        "Each line excludes the lines nested in it: conv and linear times do not include the "
        "quantization of their DFP16 tensors, which is its own line. conv bprop and conv wtgrad: "
        "DFP16 convolutions (wtgrad: its GEMM; bprop: the rest of backward, i.e. the BPROP GEMMs, "
        "a strided BPROP's scatter and the bias gradient); conv backward: FP32 convolutions, whose "
        "oneDNN backward "
        "runs both passes in one call.\n";
    if (shown.empty()) return out;
    out +=
        "ms per step, by layer (forward + backward, quantization included; median sample), the " +
        std::to_string(shown.size()) + " slowest:\n";
    for (const std::size_t i : shown) {
        const std::string label = "  " + first.layers[i].name;
        row(label.c_str(),
            [&](const TrainBenchRecord& r) { return number(r.layers.at(i).ms, "%.2f"); });
    }
    return out;
}

nlohmann::json train_bench_json(const std::vector<TrainBenchRecord>& records) {
    nlohmann::json out = nlohmann::json::array();
    for (const TrainBenchRecord& r : records) {
        nlohmann::json breakdown = nlohmann::json::object();
        for (int i = 0; i < nn::kSections; ++i)
            breakdown[nn::section_key(static_cast<nn::Section>(i))] = r.breakdown_ms[i];
        nlohmann::json layers = nlohmann::json::array();
        for (const LayerTime& l : r.layers)
            layers.push_back({{"name", l.name}, {"kind", l.kind}, {"ms", l.ms}});
        const std::string input = std::to_string(r.input.height) + "x" +
                                  std::to_string(r.input.width) + "x" +
                                  std::to_string(r.input.channels);
        out.push_back(
            {{"model", r.model},
             {"batch", r.batch},
             {"threads", r.threads},
             {"precision", r.precision},
             {"step_ms", r.step_ms},
             {"images_per_s", r.images_per_s},
             {"speedup_vs_fp32",
              r.speedup_vs_fp32 ? nlohmann::json(*r.speedup_vs_fp32) : nlohmann::json(nullptr)},
             {"sample_ms", r.sample_ms},
             {"speedup_vs_fp32_rounds",
              r.speedup_vs_fp32_rounds ? nlohmann::json::array({r.speedup_vs_fp32_rounds->first,
                                                                r.speedup_vs_fp32_rounds->second})
                                       : nlohmann::json(nullptr)},
             {"breakdown_ms", breakdown},
             {"input", input},
             {"classes", r.input.classes},
             {"dfp16_layers", r.dfp16_layers},
             {"dfp8_layers", r.dfp8_layers},
             {"gemm_layers", r.gemm_layers},
             {"repetitions", r.repetitions},
             {"warmup", r.warmup},
             {"steps_per_sample", r.steps_per_sample},
             {"cpu", r.cpu},
             {"isa", r.isa},
             {"layers_ms", layers}});
    }
    return out;
}

}  // namespace dfp::bench
