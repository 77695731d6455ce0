// dfptrain bench gemm: DFP16 GEMM against oneDNN FP32 sgemm and oneDNN bf16 matmul, side by side.
// dfptrain bench conv: DFP16 Conv2d against oneDNN FP32 and bf16 convolutions, pass by pass.
// dfptrain bench peak: the multiply-add peaks of this CPU (the yardsticks of the two above).
// dfptrain bench train: the training step of a whole network in several precisions, by kind of
// work.
#include <omp.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "bench/conv_bench.hpp"
#include "bench/gemm_bench.hpp"
#include "bench/peak.hpp"
#include "bench/train_bench.hpp"
#include "cli/commands.hpp"
#include "models/registry.hpp"

namespace dfp::cli {
namespace {

using bench::GemmBenchConfig;
using bench::GemmBenchRecord;
using kernels::Op;

struct BenchGemmOptions {
    std::vector<std::string> shapes;
    std::vector<int> threads = {1, 2};
    int reps = 5;
    double min_sample_ms = 20;
    int input_shift = kernels::kDefaultInputShift;
    int64_t max_chain_pairs = kernels::kDefaultMaxChainPairs;
    bool count_overflow = false;
    bool no_dfp8 = false;
    std::string json_path;
};

const char* ops(const bench::GemmShape& s) {
    static const char* names[2][2] = {{"NN", "NT"}, {"TN", "TT"}};
    return names[s.op_a == Op::t][s.op_b == Op::t];
}

void print_header() {
    std::printf(
        "%-6s %5s %6s %5s %2s %3s | %8s %8s %8s | %6s %6s | %8s %8s %8s | %6s %6s | %5s %8s\n",
        "form", "M", "N", "K", "op", "thr", "dfp16", "fp32", "bf16", "x fp32", "x bf16", "dfp8",
        "mxint8", "s8 dnnl", "x fp32", "x fp32", "chain", "rel.err");
    std::printf(
        "%-6s %5s %6s %5s %2s %3s | %8s %8s %8s | %6s %6s | %8s %8s %8s | %6s %6s | %5s %8s\n", "",
        "", "", "", "", "", "GFLOP/s", "GFLOP/s", "GFLOP/s", "", "", "GFLOP/s", "GFLOP/s",
        "GFLOP/s", "dfp8", "mxint8", "pairs", "vs fp32");
}

void print_record(const GemmBenchRecord& r) {
    // A oneDNN matmul this CPU lacks (bf16 without AVX-512) has 0 GFLOP/s: "-".
    char bf16[16] = "-", bf16_ratio[16] = "-";
    if (r.onednn_bf16_gflops > 0) {
        std::snprintf(bf16, sizeof bf16, "%.1f", r.onednn_bf16_gflops);
        std::snprintf(bf16_ratio, sizeof bf16_ratio, "%.2f", r.dfp16_gflops / r.onednn_bf16_gflops);
    }
    std::printf(
        "%-6s %5ld %6ld %5ld %2s %3d | %8.1f %8.1f %8s | %6.2f %6s | %8.1f %8.1f %8.1f | %6.2f "
        "%6.2f | %5ld %8.1e\n",
        r.shape.form.c_str(), r.shape.m, r.shape.n, r.shape.k, ops(r.shape), r.threads,
        r.dfp16_gflops, r.onednn_fp32_gflops, bf16, r.dfp16_gflops / r.onednn_fp32_gflops,
        bf16_ratio, r.dfp8_gflops, r.mxint8_gflops, r.onednn_s8_gflops,
        r.dfp8_gflops / r.onednn_fp32_gflops, r.mxint8_gflops / r.onednn_fp32_gflops,
        r.dfp16_min_chain_pairs, r.dfp16_rel_error);
    std::fflush(stdout);
}

void run_bench_gemm(const BenchGemmOptions& o) {
    GemmBenchConfig config;
    if (!o.shapes.empty()) {
        config.shapes.clear();
        for (const std::string& s : o.shapes) config.shapes.push_back(bench::parse_gemm_shape(s));
    }
    config.threads = o.threads;
    config.repetitions = o.reps;
    config.min_sample_s = o.min_sample_ms * 1e-3;
    config.with_dfp8 = !o.no_dfp8;
    config.options.input_shift = o.input_shift;
    config.options.max_chain_pairs = o.max_chain_pairs;
    config.options.overflow =
        o.count_overflow ? kernels::OverflowMode::count : kernels::OverflowMode::proven;
    std::printf("CPU: %s\n", cpu_name().c_str());
    std::printf(
        "DFP16 GEMM (input shift %d, overflow %s, max chain %ld pairs) vs oneDNN; medians of %d "
        "samples\n",
        o.input_shift, o.count_overflow ? "count (unproven)" : "proven", o.max_chain_pairs, o.reps);
    print_header();
    const std::vector<GemmBenchRecord> records = bench::run_gemm_bench(config, print_record);
    if (!records.empty()) std::printf("kernel: %s\n", records.front().dfp16_kernel.c_str());
    if (!records.empty() && !records.back().onednn_unavailable.empty())
        std::printf("unavailable on this CPU: %s\n", records.back().onednn_unavailable.c_str());
    if (o.json_path.empty()) return;
    // null for what was not measured (with_dfp8 off, or a oneDNN matmul this CPU lacks)
    const auto measured = [](double gflops, double value = -1) {
        return gflops > 0 ? nlohmann::json(value < 0 ? gflops : value) : nlohmann::json(nullptr);
    };
    nlohmann::json out = nlohmann::json::array();
    for (const GemmBenchRecord& r : records)
        out.push_back({{"m", r.shape.m},
                       {"n", r.shape.n},
                       {"k", r.shape.k},
                       {"form", r.shape.form},
                       {"op_a", r.shape.op_a == Op::t ? "T" : "N"},
                       {"op_b", r.shape.op_b == Op::t ? "T" : "N"},
                       {"threads", r.threads},
                       {"dfp16_gflops", r.dfp16_gflops},
                       {"onednn_fp32_gflops", r.onednn_fp32_gflops},
                       {"onednn_bf16_gflops", measured(r.onednn_bf16_gflops)},
                       {"dfp8_gflops", r.dfp8_gflops},
                       {"speedup_vs_onednn_fp32", r.dfp16_gflops / r.onednn_fp32_gflops},
                       {"speedup_vs_onednn_bf16",
                        measured(r.onednn_bf16_gflops, r.dfp16_gflops / r.onednn_bf16_gflops)},
                       {"dfp8_speedup_vs_onednn_fp32", r.dfp8_gflops / r.onednn_fp32_gflops},
                       {"mxint8_gflops", r.mxint8_gflops},
                       {"mxint8_speedup_vs_onednn_fp32", r.mxint8_gflops / r.onednn_fp32_gflops},
                       {"onednn_s8_gflops", measured(r.onednn_s8_gflops)},
                       {"dfp16_min_chain_pairs", r.dfp16_min_chain_pairs},
                       {"dfp16_rel_error_vs_fp32", r.dfp16_rel_error},
                       {"dfp16_kernel", r.dfp16_kernel},
                       {"input_shift", o.input_shift},
                       {"overflow", o.count_overflow ? "count" : "proven"},
                       {"repetitions", o.reps}});
    write_json_file(o.json_path, out);
}

constexpr double kSecondsPerMs = 1e-3;

struct BenchConvOptions {
    bench::ConvBenchConfig config;
    std::vector<std::string> layers, shapes;
    double min_sample_ms = config.min_sample_s / kSecondsPerMs;
    std::string json_path;
};

void run_bench_conv(BenchConvOptions o) {
    if (!o.layers.empty() || !o.shapes.empty()) {
        o.config.layers = bench::select_conv_layers(o.layers);
        for (const std::string& s : o.shapes) o.config.layers.push_back(bench::parse_conv_shape(s));
    }
    o.config.min_sample_s = o.min_sample_ms * kSecondsPerMs;
    std::printf("CPU: %s\n", cpu_name().c_str());
    std::printf(
        "DFP16 Conv2d (precision %s, quantization included) vs oneDNN FP32 (Conv2d) and bf16; "
        "medians of %d samples; BPROP = backward - WTGRAD\n",
        o.config.precision.c_str(), o.config.repetitions);
    std::printf("%s", bench::conv_table_header().c_str());
    const auto print_row = [](const bench::ConvBenchRecord& r) {
        std::printf("%s", bench::conv_table_row(r).c_str());
        std::fflush(stdout);
    };
    const std::vector<bench::ConvBenchRecord> records = bench::run_conv_bench(o.config, print_row);
    if (!records.empty())
        std::printf("oneDNN bf16: %s\n", records.front().onednn_bf16_impls.c_str());
    if (o.json_path.empty()) return;
    write_json_file(o.json_path, bench::conv_bench_json(records, o.config.repetitions));
}

void add_bench_conv_command(CLI::App& bench) {
    auto o = std::make_shared<BenchConvOptions>();
    CLI::App* conv = bench.add_subcommand(
        "conv", "DFP16 Conv2d vs oneDNN FP32 and bf16 convolutions (ms per FPROP, BPROP, WTGRAD)");
    conv->add_option("--layers", o->layers,
                     "ResNet-50 layers to measure, e.g. --layers res2_3x3,res4_3x3; default: all")
        ->delimiter(',');
    conv->add_option("--shape", o->shapes,
                     "Also (or, without --layers, only) a layer N,H,W,C,K,KERNEL[,STRIDE[,PAD]], "
                     "e.g. --shape 32,28,28,32,96,5 (GoogLeNet's inception_3b.5x5); repeatable");
    conv->add_option("--threads", o->config.threads, "Thread counts to measure, e.g. --threads 1,2")
        ->delimiter(',');
    conv->add_option("--reps", o->config.repetitions,
                     "Samples per implementation and pass (the median is reported)")
        ->check(CLI::Range(1, 1000));
    conv->add_option("--min-sample-ms", o->min_sample_ms,
                     "Each sample repeats the pass for at least this long");
    conv->add_option(
        "--precision", o->config.precision,
        "Precision policy spec for the DFP16 layers, e.g. dfp16,gradients.rounding=stochastic");
    conv->add_option("--json", o->json_path,
                     "Also write one JSON record per layer, pass and thread count");
    conv->callback([o] { run_bench_conv(*o); });
}

struct BenchPeakOptions {
    std::vector<int> threads = {1, 2};
    int reps = 5;
    double sample_ms = 200;
    std::string json_path;
};

void run_bench_peak(const BenchPeakOptions& o) {
    std::printf("%s: multiply-add peaks, medians of %d samples (a multiply-add counts 2)\n",
                cpu_name().c_str(), o.reps);
    std::printf(
        "threads  fp32 FMA GFLOP/s  s16 vpdpwssd GOP/s  s8 vpdpbusd GOP/s  s16/fp32  s8/fp32\n");
    const auto print = [](const bench::PeakRecord& r) {
        std::printf("%7d  %16.1f  %18.1f  %17.1f  %8.2f  %7.2f\n", r.threads, r.fp32_gflops,
                    r.s16_gops, r.s8_gops, r.s16_gops / r.fp32_gflops, r.s8_gops / r.fp32_gflops);
        std::fflush(stdout);
    };
    const auto records =
        bench::run_peak_bench(o.threads, o.reps, o.sample_ms * kSecondsPerMs, print);
    if (!o.json_path.empty()) write_json_file(o.json_path, bench::peak_bench_json(records));
}

void add_bench_peak_command(CLI::App& bench) {
    auto o = std::make_shared<BenchPeakOptions>();
    CLI::App* peak = bench.add_subcommand(
        "peak", "Multiply-add peaks of this CPU: FP32 FMA, INT16 vpdpwssd, INT8 vpdpbusd");
    peak->add_option("--threads", o->threads, "Thread counts to measure, e.g. --threads 1,2")
        ->delimiter(',');
    peak->add_option("--reps", o->reps, "Samples per loop (the median is reported)")
        ->check(CLI::Range(1, 1000));
    peak->add_option("--sample-ms", o->sample_ms, "Length of one sample")
        ->check(CLI::Range(1.0, 10000.0));
    peak->add_option("--json", o->json_path, "Also write one JSON record per thread count");
    peak->callback([o] { run_bench_peak(*o); });
}

struct BenchTrainOptions {
    bench::TrainBenchConfig config;
    std::vector<std::string> precisions;  // lists, each split by bench::split_precision_list
    std::string input;                    // "HxWxC"; empty: the model's natural input
    std::int64_t classes = 0;             // 0: the model's natural class count
    int threads = 0;
    double min_sample_ms = config.min_sample_s / kSecondsPerMs;
    std::string json_path;
    int top_layers = 0;
};

void run_bench_train(BenchTrainOptions o) {
    bench::TrainBenchConfig& c = o.config;
    if (o.threads < 0) throw Error("--threads must be >= 0 (0: all cores)");
    if (o.classes < 0) throw Error("--classes must be >= 2 (0: the model's own)");
    models::ImageInput natural;
    try {
        natural = models::natural_input(c.model);
    } catch (const Error& e) {
        throw Error(std::string("--model: ") + e.what());
    }
    const std::int64_t classes = o.classes > 0 ? o.classes : natural.classes;
    c.input = o.input.empty() ? natural : parse_image_input(o.input, classes);
    c.input.classes = classes;
    if (!o.precisions.empty()) {
        c.precisions.clear();
        for (const std::string& list : o.precisions)
            for (const std::string& spec : bench::split_precision_list(list))
                c.precisions.push_back(spec);
    }
    c.min_sample_s = o.min_sample_ms * kSecondsPerMs;
    bench::check_train_bench_config(c);
    // An unwritable --json is found out now, not after minutes of measurement (the file is
    // written again at the end).
    if (!o.json_path.empty()) write_json_file(o.json_path, nlohmann::json::array());
    if (o.threads > 0) omp_set_num_threads(o.threads);
    const std::vector<bench::TrainBenchRecord> records = bench::run_train_bench(c);
    std::printf("%s", bench::train_bench_table(records, o.top_layers).c_str());
    if (!o.json_path.empty()) write_json_file(o.json_path, bench::train_bench_json(records));
}

void add_bench_train_command(CLI::App& bench) {
    auto o = std::make_shared<BenchTrainOptions>();
    CLI::App* cmd = bench.add_subcommand(
        "train",
        "Training step time and images/s of a network in several precisions, side by side, with "
        "the time by kind of work");
    cmd->add_option("--model", o->config.model, "Network (default resnet50), as for train");
    cmd->add_option("--batch", o->config.batch, "Images per step (default 16)");
    cmd->add_option(
        "--precision", o->precisions,
        "Comma-separated precision specs, each as train --precision takes them and "
        "starting with fp32, dfp16 or dfp8, e.g. fp32,dfp16,first=dfp16 (default fp32,dfp16)");
    cmd->add_option("--threads", o->threads, "OpenMP threads (0: all cores)");
    cmd->add_option("--reps", o->config.repetitions,
                    "Samples per precision (the median is reported)");
    cmd->add_option("--warmup", o->config.warmup, "Untimed steps per precision first");
    cmd->add_option("--min-sample-ms", o->min_sample_ms,
                    "Each sample repeats the step for at least this long");
    cmd->add_option("--input", o->input,
                    "Input image HxWxC (default: the model's own, 28x28x1 for lenet5, 32x32x3 for "
                    "resnet20/32/56, 224x224x3 for the others)");
    cmd->add_option("--classes", o->classes,
                    "Number of classes (default: 10 for lenet5 and resnet20/32/56, else 1000)");
    cmd->add_option("--json", o->json_path, "Also write one JSON record per precision");
    cmd->add_option("--layers", o->top_layers,
                    "Also list the N slowest layers, forward and backward, in every precision")
        ->check(CLI::NonNegativeNumber);
    cmd->callback([o] { run_bench_train(*o); });
}

}  // namespace

void add_bench_command(CLI::App& app) {
    CLI::App* bench = app.add_subcommand(
        "bench", "Measure kernels against oneDNN, or training steps by precision, on this machine");
    bench->require_subcommand(1);
    auto o = std::make_shared<BenchGemmOptions>();
    CLI::App* gemm = bench->add_subcommand(
        "gemm",
        "DFP16 GEMM vs oneDNN FP32 sgemm and bf16 matmul (GFLOP/s, a multiply-add counts 2)");
    gemm->add_option(
        "--shape", o->shapes,
        "M,N,K or M,N,K,XY (X, Y in N/T: op of A, B); repeatable; default: the conv/FC set");
    gemm->add_option("--threads", o->threads, "Thread counts to measure, e.g. --threads 1,2")
        ->delimiter(',');
    gemm->add_option("--reps", o->reps, "Samples per implementation (the median is reported)")
        ->check(CLI::Range(1, 1000));
    gemm->add_option("--min-sample-ms", o->min_sample_ms,
                     "Each sample repeats the GEMM for at least this long");
    gemm->add_option("--input-shift", o->input_shift,
                     "Right-shift of the DFP16 inputs while packing (0..8)");
    gemm->add_option("--max-chain", o->max_chain_pairs,
                     "Cap on the INT32 chain in K-pairs (count mode: the fixed chain)");
    gemm->add_flag("--count-overflow", o->count_overflow,
                   "Unproven fixed chains on vpdpwssds, counting saturations");
    gemm->add_flag("--no-dfp8", o->no_dfp8,
                   "Skip the 8-bit measurements (DFP8, MXINT8, oneDNN int8)");
    gemm->add_option("--json", o->json_path,
                     "Also write one JSON record per shape, form and thread count");
    gemm->callback([o] { run_bench_gemm(*o); });
    add_bench_conv_command(*bench);
    add_bench_peak_command(*bench);
    add_bench_train_command(*bench);
}

}  // namespace dfp::cli
