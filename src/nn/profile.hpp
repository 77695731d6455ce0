// Where a training step spends its time, by kind of work (`dfptrain bench train`). A Profiler
// charges wall time to one Section at a time: Net charges each layer call to its kind and pass,
// DFP16 and DFP8 layers charge quantization and their WTGRAD GEMM (nn/dfp_gemm.cpp), train_step charges
// the loss and the SGD update. Sections nest and the time is exclusive: the quantization inside a
// DFP16 convolution's forward counts as quantization, not as conv fprop. So the sections partition
// the time between the outermost enter() and its leave(): they add up to it, nothing is counted
// twice.
//
// Off unless attached: the hooks read one thread-local pointer and do nothing when it is null, so
// `dfptrain train` pays a null check per layer call. Only the attaching thread is profiled: the
// layers are called from it, and the OpenMP workers inside a layer count as that layer's time.
#pragma once

#include <array>
#include <chrono>
#include <vector>

namespace dfp::nn {

class Layer;

enum class Section {
    conv_fprop,     // Conv2d forward (FP32 oneDNN or DFP16 GEMM, im2col, bias)
    conv_bprop,     // DFP16 Conv2d backward but its WTGRAD GEMM: BPROP GEMMs, scatter, bias grad
    conv_wtgrad,    // the WTGRAD GEMM of DFP16 Conv2d
    conv_backward,  // FP32 Conv2d backward: oneDNN runs BPROP and WTGRAD in one layer call
    linear_forward,
    linear_backward,
    batchnorm,     // forward and backward
    relu,          // forward and backward
    pooling,       // max, average and global average pooling, forward and backward
    loss,          // softmax cross-entropy and the count of correct answers
    quantization,  // FP32 -> DFP16 of weights, activations and gradients in DFP16 layers
    sgd_update,    // Sgd::step: the finite check and the update of the master weights
    other,         // everything else: add, concat, dropout, LRN, zeroing of gradients, ...
};
inline constexpr int kSections = static_cast<int>(Section::other) + 1;
// A stable identifier: "conv_fprop", ..., the keys of `bench train --json`'s breakdown_ms.
const char* section_key(Section s);
// For tables: "conv fprop", "batch-norm", ...
const char* section_label(Section s);

// The section of one call of `layer`'s forward (backward = false) or backward, from its kind().
Section layer_section(const Layer& layer, bool backward);

class Profiler {
  public:
    Profiler();
    // Starts charging `s` (until the matching leave()); the section that was running stops.
    void enter(Section s);
    // Ends the innermost enter(); the section around it runs again.
    void leave();
    double seconds(Section s) const { return seconds_[static_cast<int>(s)]; }
    double total_seconds() const;
    // Wall time of the calls of Net node `node`'s layer, forward and backward, with everything
    // inside them (its quantization and GEMMs): per layer, not exclusive like the sections.
    void add_layer_seconds(int node, double seconds);
    // Indexed by Net node; nodes that never ran read 0.
    const std::vector<double>& layer_seconds() const { return layer_seconds_; }
    void reset();

  private:
    using Clock = std::chrono::steady_clock;
    // Adds the time since mark_ to the innermost section and moves mark_ to now.
    void charge(Clock::time_point now);

    std::array<double, kSections> seconds_{};
    std::vector<Section> open_;  // innermost last
    Clock::time_point mark_;
    std::vector<double> layer_seconds_;
};

// The profiler of the calling thread, or null (the default).
Profiler* active_profiler();

// Makes `profiler` the calling thread's active profiler for its lifetime, then restores the
// previous one.
class ActiveProfiler {
  public:
    explicit ActiveProfiler(Profiler& profiler);
    ~ActiveProfiler();
    ActiveProfiler(const ActiveProfiler&) = delete;
    ActiveProfiler& operator=(const ActiveProfiler&) = delete;

  private:
    Profiler* previous_;
};

// enter(s) on construction and leave() on destruction (also when an exception passes), or nothing
// when `profiler` is null.
class ProfileScope {
  public:
    explicit ProfileScope(Section s) : ProfileScope(active_profiler(), s) {}
    ProfileScope(Profiler* profiler, Section s) : profiler_(profiler) {
        if (profiler_) profiler_->enter(s);
    }
    ~ProfileScope() {
        if (profiler_) profiler_->leave();
    }
    ProfileScope(const ProfileScope&) = delete;
    ProfileScope& operator=(const ProfileScope&) = delete;

  private:
    Profiler* profiler_;
};

// Charges its lifetime to Net node `node` of `profiler` (nothing when that is null). Net wraps
// each layer call in one, beside the call's ProfileScope.
class LayerTimer {
  public:
    LayerTimer(Profiler* profiler, int node) : profiler_(profiler), node_(node) {
        if (profiler_) start_ = std::chrono::steady_clock::now();
    }
    ~LayerTimer() {
        if (profiler_)
            profiler_->add_layer_seconds(
                node_,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    LayerTimer(const LayerTimer&) = delete;
    LayerTimer& operator=(const LayerTimer&) = delete;

  private:
    Profiler* profiler_;
    int node_;
    std::chrono::steady_clock::time_point start_;
};

// Runs `work` charged to section `s` of the calling thread's profiler (if any); returns its result.
template <class Work>
decltype(auto) profiled(Section s, Work&& work) {
    const ProfileScope scope(s);
    return work();
}

}  // namespace dfp::nn
