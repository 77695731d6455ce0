#include "nn/profile.hpp"

#include <numeric>
#include <string_view>

#include "nn/layer.hpp"

namespace dfp::nn {
namespace {

struct SectionNames {
    const char* key;
    const char* label;
};

constexpr std::array<SectionNames, kSections> kNames = {{
    {"conv_fprop", "conv fprop"},
    {"conv_bprop", "conv bprop"},
    {"conv_wtgrad", "conv wtgrad"},
    {"conv_backward", "conv backward"},
    {"linear_forward", "linear forward"},
    {"linear_backward", "linear backward"},
    {"batchnorm", "batch-norm"},
    {"relu", "relu"},
    {"pooling", "pooling"},
    {"loss", "loss"},
    {"quantization", "quantization"},
    {"sgd_update", "sgd update"},
    {"other", "other"},
}};

// Nesting is Net -> layer -> quantize or GEMM under the caller's outermost section: four deep.
// Reserved so that enter() never allocates while it is timing.
constexpr std::size_t kExpectedDepth = 8;

thread_local Profiler* t_active = nullptr;

}  // namespace

const char* section_key(Section s) {
    return kNames.at(static_cast<std::size_t>(s)).key;
}

const char* section_label(Section s) {
    return kNames.at(static_cast<std::size_t>(s)).label;
}

Section layer_section(const Layer& layer, bool backward) {
    const std::string_view kind = layer.kind();
    if (kind == "conv2d") {
        if (!backward) return Section::conv_fprop;
        // Only the integer paths run their WTGRAD on its own GEMM call, which dfp_gemm charges to
        // conv_wtgrad; oneDNN's FP32 backward cannot be split from outside the layer.
        const precision::LayerPrecision* p = layer.precision();
        return p && p->compute != precision::Compute::fp32 ? Section::conv_bprop
                                                           : Section::conv_backward;
    }
    if (kind == "linear") return backward ? Section::linear_backward : Section::linear_forward;
    if (kind == "batchnorm2d") return Section::batchnorm;
    if (kind == "relu") return Section::relu;
    if (kind == "maxpool2d" || kind == "avgpool2d" || kind == "global_avgpool")
        return Section::pooling;
    return Section::other;
}

Profiler::Profiler() {
    open_.reserve(kExpectedDepth);
}

void Profiler::charge(Clock::time_point now) {
    if (!open_.empty())
        seconds_[static_cast<int>(open_.back())] +=
            std::chrono::duration<double>(now - mark_).count();
    mark_ = now;
}

void Profiler::enter(Section s) {
    charge(Clock::now());
    open_.push_back(s);
}

void Profiler::leave() {
    // Empty only after a reset() inside an open scope; ProfileScope calls this from a destructor,
    // where a throw would end the program.
    if (open_.empty()) return;
    charge(Clock::now());
    open_.pop_back();
}

double Profiler::total_seconds() const {
    return std::accumulate(seconds_.begin(), seconds_.end(), 0.0);
}

void Profiler::add_layer_seconds(int node, double seconds) {
    if (node < 0) return;
    // Grows on a network's first profiled step only.
    if (std::size_t(node) >= layer_seconds_.size())
        layer_seconds_.resize(std::size_t(node) + 1, 0.0);
    layer_seconds_[std::size_t(node)] += seconds;
}

void Profiler::reset() {
    seconds_.fill(0.0);
    open_.clear();
    layer_seconds_.clear();
}

Profiler* active_profiler() {
    return t_active;
}

ActiveProfiler::ActiveProfiler(Profiler& profiler) : previous_(t_active) {
    t_active = &profiler;
}

ActiveProfiler::~ActiveProfiler() {
    t_active = previous_;
}

}  // namespace dfp::nn
