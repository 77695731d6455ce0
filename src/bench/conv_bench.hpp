// Side-by-side convolution benchmark (issue 4 item 6): dfptrain's Conv2d in DFP16 (the integer
// GEMM, quantization of weights, activations and gradients and the overflow rule included) and in
// FP32 (oneDNN), and a oneDNN bf16 convolution, on the same layers, data and threads, in one
// process, for each of FPROP, BPROP and WTGRAD. Used by `dfptrain bench conv` and by
// bench/bench_conv.cpp.
//
// oneDNN bf16 is set up as oneDNN's bf16 training recipe uses it: NHWC bf16 activations and
// activation gradients (src, dst, diff_dst, diff_src), bf16 weights and FP32 weight gradients,
// both in the layout oneDNN picks (format_tag::any). The conversions to bf16 and the weight
// reorders run once, outside the timed region, so bf16 is timed at its best; DFP16 quantizes inside
// it, as training does every step, and Conv2d's FP32 path reorders its weights inside it, as it
// does every step.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "format/dfp_tensor.hpp"
#include "nn/conv2d.hpp"
#include "nn/tensor.hpp"
#include "precision/policy.hpp"

namespace dfp::bench {

// One convolution at a fixed batch: src (N, H, W, C), K output channels, a square kernel. No bias:
// in ResNet every convolution feeds a batch norm.
struct ConvLayerShape {
    std::string name;  // what --layers selects, e.g. "res2_3x3"
    std::int64_t n, h, w, c, k, kernel, stride, pad;
};

// ResNet-50's convolutions at batch 16: the 3x3 of stages 2, 3 and 4 (64 channels at 56x56, 128 at
// 28x28, 256 at 14x14), stage 3's stride-2 3x3 (v1.5: 56x56 -> 28x28), and stage 2's 1x1
// expansion (64 -> 256) and reduction (256 -> 64) at 56x56.
std::vector<ConvLayerShape> resnet50_conv_layers();
// The layers of resnet50_conv_layers() named in `names`, in that order; an unknown name throws
// dfp::Error naming --layers and listing the known names.
std::vector<ConvLayerShape> select_conv_layers(const std::vector<std::string>& names);

// A layer from "N,H,W,C,K,KERNEL[,STRIDE[,PAD]]" (`bench conv --shape`; stride 1 and pad
// KERNEL / 2 by default), named after its numbers; a malformed or non-positive entry throws
// dfp::Error naming --shape.
ConvLayerShape parse_conv_shape(const std::string& text);
// The precision the policy `spec` (a precision::Policy spec, e.g. "dfp16") gives `layer` as a
// hidden layer: the paper's policy keeps the first and the last layer FP32, and the benchmarked
// layers are neither. Throws dfp::Error naming --precision unless that is DFP16.
precision::LayerPrecision hidden_layer_precision(const std::string& spec, const std::string& layer);

// dfp8: Conv2d in the DFP8 policy (Policy::dfp8(), int8 GEMM); onednn_s8: oneDNN's int8
// convolution (s8 NHWC src, s8 weights, FP32 dst), FPROP only: oneDNN has no int8 backward.
enum class ConvImpl { dfp16, onednn_fp32, onednn_bf16, dfp8, onednn_s8 };
const char* conv_impl_name(ConvImpl impl);

enum class ConvPass { fprop, bprop, wtgrad };
const char* conv_pass_name(ConvPass pass);

// What a case runs for the clock. Conv2d's backward computes BPROP and WTGRAD together and skips
// BPROP when no data gradient is asked for, so BPROP is timed as `backward` minus
// `backward_weights` (for every implementation alike). DFP16 quantizes diff_dst once for both
// passes; that time counts in WTGRAD.
enum class ConvStep { forward, backward, backward_weights };

// What the three passes computed, in FP32 and the user's layouts: dst (N, OH, OW, K) of FPROP,
// diff_src (N, H, W, C) of BPROP, diff_wei (K, KH, KW, C) of WTGRAD.
struct ConvOutputs {
    std::vector<float> dst, diff_src, diff_wei;
};

// ||got - want||_2 / ||want||_2 (0 when both are zero, infinity when only want is).
double relative_error(const std::vector<float>& got, const std::vector<float>& want);

// One layer's data (src and diff_dst drawn from N(0, 1), Conv2d's He-uniform weights, the same for
// all three implementations) and prepared implementations. oneDNN sizes its blocking for the
// thread count at creation, so make a case after omp_set_num_threads() and run it at that count.
class ConvBenchCase {
  public:
    ConvBenchCase(const ConvLayerShape& layer, const precision::LayerPrecision& dfp16,
                  std::uint32_t seed);
    ~ConvBenchCase();
    ConvBenchCase(const ConvBenchCase&) = delete;
    ConvBenchCase& operator=(const ConvBenchCase&) = delete;

    // backward and backward_weights need a forward of the same implementation before them.
    void run(ConvImpl impl, ConvStep step);
    // Runs forward and backward once from zeroed gradients and returns what each pass computed.
    ConvOutputs outputs(ConvImpl impl);
    // Floating-point operations of one pass (a multiply-add counts 2); all three are the same size.
    double pass_flops() const;
    // oneDNN's names of the bf16 implementations it chose, e.g. "jit:avx512_core_bf16" per pass,
    // or why there are none ("unavailable on this CPU (...)": oneDNN's bf16 convolutions need
    // AVX-512; run() and outputs() then refuse onednn_bf16).
    std::string onednn_bf16_impls() const;
    bool has_onednn_bf16() const { return bf16_ != nullptr; }

  private:
    struct OnednnBf16;
    struct OnednnS8;
    void run_conv2d(nn::Conv2d& conv, ConvStep step, nn::Tensor& dst, nn::Tensor& diff_src);
    ConvOutputs conv2d_outputs(nn::Conv2d& conv, nn::Tensor& dst, nn::Tensor& diff_src);

    nn::Conv2d dfp16_, fp32_, dfp8_;
    nn::ConvGeometry geometry_;
    nn::Tensor src_, diff_dst_;
    nn::Tensor dfp16_dst_, dfp16_diff_src_, fp32_dst_, fp32_diff_src_, dfp8_dst_, dfp8_diff_src_;
    std::unique_ptr<OnednnBf16> bf16_;
    std::string bf16_unavailable_;  // why bf16_ is null
    std::unique_ptr<OnednnS8> s8_;
    Dfp8Tensor src_s8_, wei_s8_;  // oneDNN int8's data
};

struct ConvBenchRecord {
    ConvLayerShape layer;
    ConvPass pass = ConvPass::fprop;
    int threads = 1;
    double dfp16_ms = 0, onednn_fp32_ms = 0, dfp8_ms = 0;  // medians
    // Empty where not measured: bf16 without oneDNN's bf16 convolution on this CPU, s8 outside
    // FPROP. (A BPROP time, a difference of two samples, may be 0 or negative: no sentinel.)
    std::optional<double> onednn_bf16_ms, onednn_s8_ms;
    // This pass's output against oneDNN FP32's on the same data.
    double dfp16_rel_error = 0, onednn_bf16_rel_error = 0, dfp8_rel_error = 0;
    double gflop = 0;               // of the pass
    std::string onednn_bf16_impls;  // ConvBenchCase::onednn_bf16_impls()
    double speedup_vs_onednn_fp32() const { return onednn_fp32_ms / dfp16_ms; }
    // Needs onednn_bf16_ms.
    double speedup_vs_onednn_bf16() const { return *onednn_bf16_ms / dfp16_ms; }
};

struct ConvBenchConfig {
    std::vector<ConvLayerShape> layers = resnet50_conv_layers();
    std::vector<int> threads = {1, 2};
    int repetitions = 5;         // samples per implementation and step; the median is reported
    double min_sample_s = 0.02;  // each sample repeats the step until this much time has passed
    std::string precision = "dfp16";  // a precision::Policy spec; the layers are hidden layers
};

// Runs every layer x thread count, the implementations interleaved within each repetition so that
// machine noise hits them alike, and returns one record per layer, thread count and pass.
// `progress` (may be null) is called after each record.
std::vector<ConvBenchRecord> run_conv_bench(const ConvBenchConfig& config,
                                            void (*progress)(const ConvBenchRecord&) = nullptr);

// The table of `dfptrain bench conv`: two header lines, then one line per record (times in ms,
// speed-ups as oneDNN's time over DFP16's, errors against oneDNN FP32).
std::string conv_table_header();
std::string conv_table_row(const ConvBenchRecord& record);
// The JSON array of --json: one object per record with the keys layer, pass ("fprop", "bprop",
// "wtgrad"), threads, dfp16_ms, onednn_fp32_ms, onednn_bf16_ms, speedup_vs_onednn_fp32 (a public
// interface: scripts read these names), and more that describe the layer and the errors.
nlohmann::json conv_bench_json(const std::vector<ConvBenchRecord>& records, int repetitions);

}  // namespace dfp::bench
