// dfptrain inspect: how the values of a real file fit each DFP format, before training with it;
// or, with --model, the layers of a network with their parameters and multiply-adds.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "cli/commands.hpp"
#include "data/idx.hpp"
#include "format/quantize.hpp"
#include "models/registry.hpp"
#include "models/summary.hpp"

namespace dfp::cli {
namespace {

struct InspectOptions {
    std::string path;
    bool raw = false;
    std::vector<std::size_t> shape;
    int block = 32;
    int axis = -1;
    std::string rounding = "nearest_even";
    int shift = 0;
    std::uint64_t seed = 0;
    std::string json_path;
    std::string model;
    std::string input = "224x224x3";
    std::int64_t classes = 1000;
};

struct Row {
    Format format;
    std::vector<int> exponents;  // of the blocks that are not all zero
    std::size_t blocks;
    QuantizeError error;
};

// The exponents of the blocks that hold a non-zero value: an all-zero block's exponent is a
// convention (0), not a fact about the data.
std::vector<int> nonzero_block_exponents(const data::Array& a, const Format& format,
                                         const std::vector<int>& exponents) {
    const BlockLayout layout(a.shape, format);
    std::vector<char> nonzero(exponents.size(), 0);
    for (std::size_t i = 0; i < layout.runs(); ++i) {
        const Run run = layout.run(i);
        const float* v = a.values.data() + run.offset;
        nonzero[run.exponent] |= std::any_of(v, v + run.count, [](float x) { return x != 0.0f; });
    }
    std::vector<int> kept;
    for (std::size_t e = 0; e < exponents.size(); ++e)
        if (nonzero[e]) kept.push_back(exponents[e]);
    return kept;
}

template <class M>
Row inspect_format(const data::Array& a, const Format& format, const QuantizeOptions& q,
                   const std::string& name) {
    const DfpTensor<M> t = quantize<M>(a.values.data(), a.shape, format, q, name);
    return {format, nonzero_block_exponents(a, format, t.exponents), t.exponents.size(),
            measure_error(a.values.data(), t)};
}

std::string exponent_summary(std::vector<int> e, std::size_t blocks) {
    const std::string zero =
        e.size() < blocks ? ", " + std::to_string(blocks - e.size()) + " all zero" : "";
    if (e.empty()) return "- (all zero)";
    if (blocks == 1) return std::to_string(e[0]);
    std::sort(e.begin(), e.end());
    return std::to_string(e.front()) + ".." + std::to_string(e.back()) + " (median " +
           std::to_string(e[e.size() / 2]) + ", " + std::to_string(blocks) + " blocks" + zero + ")";
}

std::string percent(std::size_t part, std::size_t whole) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f%%",
                  whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
    return buf;
}

void run_inspect(const InspectOptions& o) {
    const QuantizeOptions q{parse_rounding(o.rounding, "--rounding"), o.shift, o.seed};
    if (!o.raw && !o.shape.empty())
        throw Error("--shape is for --raw files; IDX files carry their shape");
    const data::Array a = o.raw ? data::read_raw_f32(o.path, o.shape) : data::read_idx(o.path);

    std::vector<Format> formats;
    for (int bits : {16, 8}) {
        Format f;
        f.bits = bits;
        formats.push_back(f);
        f.granularity = Granularity::block;
        f.block = o.block;
        formats.push_back(f);
        if (o.axis >= 0) {
            f.granularity = Granularity::axis;
            f.axis = o.axis;
            formats.push_back(f);
        }
    }
    const auto [lo, hi] = std::minmax_element(a.values.begin(), a.values.end());
    std::printf("%s: %s %s, %zu values", o.path.c_str(), a.element_type.c_str(),
                shape_string(a.shape).c_str(), a.values.size());
    if (!a.values.empty()) std::printf(", range [%g, %g]", *lo, *hi);
    std::printf("\nrounding %s, shift %d; blocks run along the last axis\n\n", o.rounding.c_str(),
                o.shift);
    std::printf("%-14s %-54s %12s %10s %10s %10s\n", "format", "shared exponent(s)", "rel. error",
                "SQNR dB", "flushed", "clamped");

    nlohmann::json records = nlohmann::json::array();
    for (const Format& f : formats) {
        const Row r = f.bits <= 8 ? inspect_format<std::int8_t>(a, f, q, o.path)
                                  : inspect_format<std::int16_t>(a, f, q, o.path);
        const QuantizeError& e = r.error;
        std::printf("%-14s %-54s %12.3e %10.2f %10s %10s\n", f.name().c_str(),
                    exponent_summary(r.exponents, r.blocks).c_str(), e.relative_error(),
                    e.sqnr_db(), percent(e.flushed, e.count).c_str(),
                    percent(e.clamped, e.count).c_str());
        const auto [emin, emax] = std::minmax_element(r.exponents.begin(), r.exponents.end());
        const double sqnr = e.sqnr_db();
        records.push_back(
            {{"format", f.name()},
             {"bits", f.bits},
             {"exponent_min", r.exponents.empty() ? 0 : *emin},
             {"exponent_max", r.exponents.empty() ? 0 : *emax},
             {"blocks", r.blocks},
             {"all_zero_blocks", r.blocks - r.exponents.size()},
             {"relative_error", e.relative_error()},
             {"sqnr_db", std::isinf(sqnr) ? nlohmann::json(nullptr) : nlohmann::json(sqnr)},
             {"flushed_fraction", e.count ? double(e.flushed) / double(e.count) : 0.0},
             {"clamped_fraction", e.count ? double(e.clamped) / double(e.count) : 0.0}});
    }
    std::printf(
        "\nSQNR inf: the format holds the data exactly. JSON sqnr_db null means the same.\n");
    if (!o.json_path.empty()) {
        write_json_file(o.json_path, records);
    }
}

}  // namespace

models::ImageInput parse_image_input(const std::string& spec, std::int64_t classes) {
    models::ImageInput in;
    in.classes = classes;
    char x1 = 0, x2 = 0;
    char rest = 0;
    long long h = 0, w = 0, c = 0;
    if (std::sscanf(spec.c_str(), "%lld%c%lld%c%lld%c", &h, &x1, &w, &x2, &c, &rest) != 5 ||
        x1 != 'x' || x2 != 'x' || h < 1 || w < 1 || c < 1)
        throw Error("--input: expected HxWxC with positive sizes (e.g. 32x32x3), got '" + spec +
                    "'");
    in.height = h;
    in.width = w;
    in.channels = c;
    return in;
}

namespace {

std::string shape_hwc(const Shape& s) {
    std::string out;
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (i > 1) out += 'x';
        out += std::to_string(s[i]);
    }
    return out;
}

void run_model_inspect(const InspectOptions& o) {
    const models::ImageInput in = parse_image_input(o.input, o.classes);
    nn::Net net = models::build(o.model, in);
    const std::vector<models::LayerStats> layers = models::layer_stats(net, in);
    const models::Totals total = models::totals(layers);
    std::printf("%s for %s: per image, multiply-adds of conv2d and linear layers only\n\n",
                o.model.c_str(), models::input_string(in).c_str());
    std::printf("%-32s %-20s %-14s %12s %16s\n", "layer", "kind", "output", "parameters",
                "multiply-adds");
    for (const models::LayerStats& l : layers)
        std::printf("%-32s %-20s %-14s %12lld %16lld\n", l.name.c_str(),
                    (l.kind + (l.fused_add ? "+add" : "") + (l.fused_relu ? "+relu" : "")).c_str(),
                    shape_hwc(l.dst).c_str(), static_cast<long long>(l.params),
                    static_cast<long long>(l.macs));
    const double macs = static_cast<double>(total.macs);
    std::printf("\ntotal: %lld parameters (%.2f M), %lld multiply-adds (%.3f %s)\n",
                static_cast<long long>(total.params), static_cast<double>(total.params) * 1e-6,
                static_cast<long long>(total.macs), macs >= 1e9 ? macs * 1e-9 : macs * 1e-6,
                macs >= 1e9 ? "G" : "M");
}

}  // namespace

void add_inspect_command(CLI::App& app) {
    auto o = std::make_shared<InspectOptions>();
    CLI::App* cmd = app.add_subcommand("inspect",
                                       "Show how a data file fits DFP16 and DFP8 (per tensor, per "
                                       "block), or a model's layers (--model)");
    cmd->add_option("file", o->path, "IDX file (gzip or plain), or raw float32 with --raw");
    cmd->add_flag("--raw", o->raw, "The file is raw little-endian float32");
    cmd->add_option("--shape", o->shape, "Shape of a --raw file, e.g. --shape 100,784")
        ->delimiter(',');
    cmd->add_option("--block", o->block, "Elements per block along the last axis")
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--axis", o->axis, "Also show one exponent per index along this axis");
    cmd->add_option(
        "--rounding", o->rounding,
        "nearest_even, nearest_away, truncate, biased, stochastic or pseudo_stochastic");
    cmd->add_option("--shift", o->shift,
                    "Extra headroom bits s in E_s = floor(log2 max) - (b-2) + s (default 0; "
                    "training's DFP16 policy quantizes with 1)");
    cmd->add_option("--seed", o->seed, "Seed of stochastic rounding");
    cmd->add_option("--json", o->json_path, "Also write the table as JSON to this file");
    cmd->add_option("--model", o->model,
                    "Instead of a file: show this network's layers, parameters and multiply-adds");
    cmd->add_option("--input", o->input, "With --model: input image HxWxC (default 224x224x3)");
    cmd->add_option("--classes", o->classes, "With --model: number of classes (default 1000)");
    cmd->callback([o] {
        if (!o->model.empty() && !o->path.empty())
            throw Error("inspect: give a FILE or --model, not both");
        if (o->model.empty() && o->path.empty())
            throw Error("inspect: give a FILE, or --model NAME");
        if (o->model.empty())
            run_inspect(*o);
        else
            run_model_inspect(*o);
    });
}

}  // namespace dfp::cli
