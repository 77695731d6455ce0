// `dfptrain bench train` and the profiler under it (nn/profile.hpp), on tiny models with one
// repetition. No assertion on speed: only that the records are filled and consistent (the ratio is
// the ratio of the step times, the breakdown adds up to no more than the step and has the kinds of
// work each precision runs), that --precision lists split as documented, that bad options name
// themselves, and that profiling leaves the step's results unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "bench/train_bench.hpp"
#include "models/registry.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/profile.hpp"
#include "precision/policy.hpp"
#include "train/evaluate.hpp"
#include "train/train_step.hpp"

namespace dfp::bench {
namespace {

using nn::Section;

// The profiled sections run inside the sample's clock: their sum may not exceed the step time but
// for rounding (the times are sums of many double differences).
constexpr double kSumTolerance = 1e-9;

double ms(const TrainBenchRecord& r, Section s) {
    return r.breakdown_ms[static_cast<int>(s)];
}

TrainBenchConfig tiny(const std::string& model, models::ImageInput input,
                      std::vector<std::string> precisions) {
    TrainBenchConfig c;
    c.model = model;
    c.input = input;
    c.batch = 8;
    c.precisions = std::move(precisions);
    c.repetitions = 1;
    c.warmup = 1;
    c.min_sample_s = 0;
    return c;
}

void print(const std::vector<TrainBenchRecord>& records) {
    std::printf("%s", train_bench_table(records).c_str());
}

void expect_consistent(const TrainBenchRecord& r, const TrainBenchConfig& c) {
    EXPECT_EQ(r.model, c.model);
    EXPECT_EQ(r.batch, c.batch);
    EXPECT_GE(r.threads, 1);
    EXPECT_EQ(r.repetitions, c.repetitions);
    EXPECT_GE(r.steps_per_sample, 1);
    EXPECT_TRUE(std::isfinite(r.step_ms));
    EXPECT_GT(r.step_ms, 0);
    EXPECT_DOUBLE_EQ(r.images_per_s, static_cast<double>(c.batch) * 1e3 / r.step_ms);
    for (double v : r.breakdown_ms) EXPECT_GE(v, 0) << r.precision;
    EXPECT_LE(r.breakdown_sum_ms(), r.step_ms * (1 + kSumTolerance)) << r.precision;
    // Every layer call, the loss and the update are inside a section, so the lines cover nearly
    // all of the step (what is left: the clock reads around the sample).
    EXPECT_GT(r.breakdown_sum_ms(), 0.5 * r.step_ms) << r.precision;
    EXPECT_GT(ms(r, Section::conv_fprop), 0) << r.precision;
    EXPECT_GT(ms(r, Section::pooling), 0) << r.precision;
    EXPECT_GT(ms(r, Section::loss), 0) << r.precision;
    EXPECT_GT(ms(r, Section::sgd_update), 0) << r.precision;
    // Layer times include what runs inside the layer calls: every section but the loss, the
    // update and "other" (which also holds train_step's own work), and nothing else.
    double layers_ms = 0;
    for (const LayerTime& l : r.layers) {
        EXPECT_GE(l.ms, 0) << l.name;
        layers_ms += l.ms;
    }
    double inside_ms = 0;
    for (const Section s :
         {Section::conv_fprop, Section::conv_bprop, Section::conv_wtgrad, Section::conv_backward,
          Section::linear_forward, Section::linear_backward, Section::batchnorm, Section::relu,
          Section::pooling, Section::quantization})
        inside_ms += ms(r, s);
    EXPECT_GE(layers_ms, inside_ms * (1 - kSumTolerance)) << r.precision;
    EXPECT_LE(layers_ms, inside_ms + ms(r, Section::other) + kSumTolerance * r.step_ms)
        << r.precision;
}

TEST(BenchTrain, Lenet5RecordsHaveTheKindsOfWorkOfEachPrecision) {
    TrainBenchConfig c = tiny("lenet5", models::natural_input("lenet5"), {"fp32", "dfp16"});
    c.repetitions = 3;  // rounds to compare
    const std::vector<TrainBenchRecord> records = run_train_bench(c);
    print(records);
    ASSERT_EQ(records.size(), 2u);
    const TrainBenchRecord &fp32 = records[0], &dfp16 = records[1];
    EXPECT_EQ(fp32.precision, "fp32");
    EXPECT_EQ(dfp16.precision, "dfp16");
    for (const TrainBenchRecord& r : records) {
        expect_consistent(r, c);
        EXPECT_EQ(r.gemm_layers, 5);  // conv1, conv2, fc1, fc2, fc3
        EXPECT_GT(ms(r, Section::linear_forward), 0);
        EXPECT_GT(ms(r, Section::linear_backward), 0);
        EXPECT_EQ(ms(r, Section::batchnorm), 0);  // LeNet-5 has none
        EXPECT_GT(ms(r, Section::relu), 0);       // and separate ReLU layers
        // Under the paper's policy conv1 stays FP32, so both columns have an FP32 conv backward.
        EXPECT_GT(ms(r, Section::conv_backward), 0) << r.precision;
    }
    EXPECT_EQ(fp32.dfp16_layers, 0);
    EXPECT_EQ(ms(fp32, Section::conv_bprop), 0);
    EXPECT_EQ(ms(fp32, Section::conv_wtgrad), 0);
    EXPECT_EQ(ms(fp32, Section::quantization), 0);
    EXPECT_EQ(dfp16.dfp16_layers, 3);  // the first and last layer stay FP32
    EXPECT_GT(ms(dfp16, Section::conv_bprop), 0);
    EXPECT_GT(ms(dfp16, Section::conv_wtgrad), 0);
    EXPECT_GT(ms(dfp16, Section::quantization), 0);

    ASSERT_TRUE(fp32.speedup_vs_fp32 && dfp16.speedup_vs_fp32);
    EXPECT_EQ(*fp32.speedup_vs_fp32, 1.0);
    EXPECT_DOUBLE_EQ(*dfp16.speedup_vs_fp32, fp32.step_ms / dfp16.step_ms);
    // Round by round: each precision's samples in the order taken, their median the step, and the
    // ratio's lowest and highest round around the ratio of the medians.
    for (const TrainBenchRecord& r : records) {
        ASSERT_EQ(r.sample_ms.size(), static_cast<std::size_t>(r.repetitions)) << r.precision;
        std::vector<double> sorted = r.sample_ms;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_DOUBLE_EQ(r.step_ms, sorted[sorted.size() / 2]) << r.precision;  // an odd count
    }
    ASSERT_TRUE(fp32.speedup_vs_fp32_rounds && dfp16.speedup_vs_fp32_rounds);
    EXPECT_EQ(fp32.speedup_vs_fp32_rounds->first, 1.0);
    EXPECT_EQ(fp32.speedup_vs_fp32_rounds->second, 1.0);
    double lo = 1e300, hi = 0;
    for (std::size_t i = 0; i < dfp16.sample_ms.size(); ++i) {
        lo = std::min(lo, fp32.sample_ms[i] / dfp16.sample_ms[i]);
        hi = std::max(hi, fp32.sample_ms[i] / dfp16.sample_ms[i]);
    }
    EXPECT_EQ(dfp16.speedup_vs_fp32_rounds->first, lo);
    EXPECT_EQ(dfp16.speedup_vs_fp32_rounds->second, hi);

    // Every layer once, in the network's order, and the --layers table names the slowest.
    for (const TrainBenchRecord& r : records) {
        ASSERT_EQ(r.layers.size(), 11u) << r.precision;  // 5 conv/linear, 4 ReLU, 2 pools
        EXPECT_EQ(r.layers.front().name, "conv1");
        EXPECT_EQ(r.layers.front().kind, std::string("conv2d"));
        EXPECT_EQ(r.layers.back().name, "fc3");
    }
    // The table ranks a layer by its largest time in any precision, so the slowest by that rule
    // is listed (the slowest of DFP16 alone need not be: an FP32 layer can outrun it).
    std::size_t slowest = 0;
    const auto largest = [&](std::size_t i) {
        return std::max(fp32.layers[i].ms, dfp16.layers[i].ms);
    };
    for (std::size_t i = 1; i < dfp16.layers.size(); ++i)
        if (largest(i) > largest(slowest)) slowest = i;
    const std::string table = train_bench_table(records, 3);
    EXPECT_NE(table.find("the 3 slowest"), std::string::npos) << table;
    EXPECT_NE(table.find("  " + dfp16.layers[slowest].name + " "), std::string::npos) << table;
    EXPECT_EQ(train_bench_table(records).find("slowest"), std::string::npos);

    const nlohmann::json json = train_bench_json(records);
    ASSERT_TRUE(json.is_array());
    ASSERT_EQ(json.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        const nlohmann::json& j = json[i];
        for (const char* key :
             {"model", "batch", "threads", "precision", "step_ms", "images_per_s",
              "speedup_vs_fp32", "breakdown_ms", "sample_ms", "speedup_vs_fp32_rounds"})
            EXPECT_TRUE(j.contains(key)) << key;
        EXPECT_EQ(j["sample_ms"].get<std::vector<double>>(), records[i].sample_ms);
        EXPECT_EQ(j["speedup_vs_fp32_rounds"][0].get<double>(),
                  records[i].speedup_vs_fp32_rounds->first);
        EXPECT_EQ(j["speedup_vs_fp32_rounds"][1].get<double>(),
                  records[i].speedup_vs_fp32_rounds->second);
        EXPECT_EQ(j["model"], "lenet5");
        EXPECT_EQ(j["isa"], isa_name(active_isa()));  // the ratios mean little without it
        EXPECT_EQ(j["cpu"], cpu_name());
        EXPECT_EQ(j["batch"], 8);
        EXPECT_EQ(j["precision"], records[i].precision);
        EXPECT_EQ(j["step_ms"].get<double>(), records[i].step_ms);
        EXPECT_EQ(j["speedup_vs_fp32"].get<double>(), *records[i].speedup_vs_fp32);
        ASSERT_EQ(j["breakdown_ms"].size(), static_cast<std::size_t>(nn::kSections));
        for (int s = 0; s < nn::kSections; ++s)
            EXPECT_EQ(j["breakdown_ms"][nn::section_key(static_cast<Section>(s))].get<double>(),
                      records[i].breakdown_ms[s]);
        ASSERT_EQ(j["layers_ms"].size(), records[i].layers.size());
        EXPECT_EQ(j["layers_ms"][0]["name"], "conv1");
        EXPECT_EQ(j["layers_ms"][0]["ms"].get<double>(), records[i].layers[0].ms);
    }
}

TEST(BenchTrain, ResnetHasBatchNormAndAllDfp16Convolutions) {
    // Every layer DFP16: no FP32 conv backward is left, and the adds of the residual blocks are
    // "other". No FP32 precision listed, so there is no ratio.
    const TrainBenchConfig c = tiny("resnet20", {16, 16, 3, 10}, {"dfp16,first=dfp16,last=dfp16"});
    const std::vector<TrainBenchRecord> records = run_train_bench(c);
    print(records);
    ASSERT_EQ(records.size(), 1u);
    const TrainBenchRecord& r = records[0];
    expect_consistent(r, c);
    EXPECT_EQ(r.dfp16_layers, r.gemm_layers);
    EXPECT_GT(ms(r, Section::batchnorm), 0);
    EXPECT_GT(ms(r, Section::conv_bprop), 0);
    EXPECT_GT(ms(r, Section::conv_wtgrad), 0);
    EXPECT_GT(ms(r, Section::quantization), 0);
    EXPECT_GT(ms(r, Section::other), 0);
    EXPECT_EQ(ms(r, Section::conv_backward), 0);
    EXPECT_FALSE(r.speedup_vs_fp32.has_value());
    EXPECT_TRUE(train_bench_json(records)[0]["speedup_vs_fp32"].is_null());
}

TEST(BenchTrain, PrecisionListsSplitAtEachBaseItem) {
    using V = std::vector<std::string>;
    EXPECT_EQ(split_precision_list("fp32,dfp16"), (V{"fp32", "dfp16"}));
    EXPECT_EQ(split_precision_list("dfp16"), (V{"dfp16"}));
    EXPECT_EQ(split_precision_list("fp32,dfp16,first=dfp16,gradients.rounding=stochastic,dfp16"),
              (V{"fp32", "dfp16,first=dfp16,gradients.rounding=stochastic", "dfp16"}));
    // A selector override names fp32 or dfp16 after '=': it stays in its spec.
    EXPECT_EQ(split_precision_list("dfp16,conv1=fp32,fp32"), (V{"dfp16,conv1=fp32", "fp32"}));
    EXPECT_THROW(split_precision_list(""), Error);
    EXPECT_THROW(split_precision_list("first=dfp16,dfp16"), Error);
}

// Runs `c` and returns the error message (empty when it does not throw dfp::Error).
std::string error_of(const TrainBenchConfig& c) {
    try {
        run_train_bench(c);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(BenchTrain, BadOptionsAreNamed) {
    const models::ImageInput in = models::natural_input("lenet5");
    TrainBenchConfig c = tiny("no_such_net", in, {"fp32"});
    EXPECT_NE(error_of(c).find("--model"), std::string::npos) << error_of(c);
    c = tiny("lenet5", in, {"fp32"});
    c.batch = 0;
    EXPECT_NE(error_of(c).find("--batch"), std::string::npos) << error_of(c);
    c = tiny("lenet5", in, {"fp32", "dfp12"});
    EXPECT_NE(error_of(c).find("--precision"), std::string::npos) << error_of(c);
    c = tiny("lenet5", in, {"fp32"});
    c.repetitions = 0;
    EXPECT_NE(error_of(c).find("--reps"), std::string::npos) << error_of(c);
    c = tiny("lenet5", {28, 28, 1, 1}, {"fp32"});
    EXPECT_NE(error_of(c).find("classes"), std::string::npos) << error_of(c);
    EXPECT_THROW(models::natural_input("no_such_net"), Error);
}

TEST(Profiler, SectionsAreExclusiveAndAddUpToTheOutermost) {
    constexpr auto kInner = std::chrono::milliseconds(20);
    nn::Profiler p;
    const auto start = std::chrono::steady_clock::now();
    {
        const nn::ProfileScope outer(&p, Section::other);
        {
            const nn::ProfileScope inner(&p, Section::quantization);
            std::this_thread::sleep_for(kInner);
        }
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double inner_s = std::chrono::duration<double>(kInner).count();
    EXPECT_GE(p.seconds(Section::quantization), inner_s);
    // The outer section lost the inner one's time: only the scope bookkeeping is left.
    EXPECT_LT(p.seconds(Section::other), 0.5 * inner_s);
    EXPECT_DOUBLE_EQ(p.total_seconds(),
                     p.seconds(Section::other) + p.seconds(Section::quantization));
    EXPECT_LE(p.total_seconds(), wall);
    p.reset();
    EXPECT_EQ(p.total_seconds(), 0);
}

TEST(Profiler, AttachedOnlyWhileActiveAndOnlyToItsThread) {
    EXPECT_EQ(nn::active_profiler(), nullptr);
    nn::Profiler outer, inner;
    {
        const nn::ActiveProfiler a(outer);
        EXPECT_EQ(nn::active_profiler(), &outer);
        {
            const nn::ActiveProfiler b(inner);
            EXPECT_EQ(nn::active_profiler(), &inner);
        }
        EXPECT_EQ(nn::active_profiler(), &outer);
        nn::Profiler* seen = &outer;
        std::thread([&] { seen = nn::active_profiler(); }).join();
        EXPECT_EQ(seen, nullptr);
    }
    EXPECT_EQ(nn::active_profiler(), nullptr);
    // Unattached, a scope is nothing.
    { const nn::ProfileScope scope(Section::loss); }
    EXPECT_EQ(outer.total_seconds(), 0);
}

TEST(Profiler, LayerSectionsFollowKindPassAndPrecision) {
    nn::Conv2d conv("c", {.in_channels = 1, .out_channels = 1});
    EXPECT_EQ(nn::layer_section(conv, false), Section::conv_fprop);
    EXPECT_EQ(nn::layer_section(conv, true), Section::conv_backward);
    conv.set_precision(precision::Policy::dfp16().for_layer("c", 1, 3));
    EXPECT_EQ(nn::layer_section(conv, true), Section::conv_bprop);
    const nn::Relu relu("r");
    EXPECT_EQ(nn::layer_section(relu, true), Section::relu);
    std::printf("sections:");
    for (int s = 0; s < nn::kSections; ++s)
        std::printf(" %s", nn::section_key(static_cast<Section>(s)));
    std::printf("\n");
}

TEST(Profiler, ProfiledStepComputesWhatAnUnprofiledStepComputes) {
    // Two copies of LeNet-5 in DFP16 (same names, so the same weights) take the same step, one
    // profiled: every weight must come out bit for bit the same.
    const models::ImageInput in = models::natural_input("lenet5");
    const data::TrainTest d = data::make_synthetic(1, 28, 28, 10, 4, 1);
    std::vector<int> labels;
    const std::vector<std::int64_t> indices = {0, 1, 2, 3};
    const nn::Tensor images = train::image_batch(d.train, indices, labels);
    std::vector<std::vector<float>> weights[2];
    for (int profiled = 0; profiled < 2; ++profiled) {
        nn::Net net = models::build("lenet5", in);
        net.apply_precision(precision::Policy::dfp16());
        train::Sgd sgd(net.params(), {0.9f, 5e-4f, false});
        nn::Profiler p;
        std::optional<nn::ActiveProfiler> attach;
        if (profiled) attach.emplace(p);
        train::train_step(net, sgd, images, labels, 0.05f, 0);
        EXPECT_EQ(p.total_seconds() > 0, profiled == 1);
        for (const nn::Param* param : net.params()) weights[profiled].push_back(param->value);
    }
    EXPECT_EQ(weights[0], weights[1]);
}

}  // namespace
}  // namespace dfp::bench
