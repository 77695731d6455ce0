#include "nn/conv2d.hpp"

#include <algorithm>
#include <dnnl.hpp>
#include <unordered_map>

#include "base/error.hpp"
#include "nn/activation.hpp"
#include "nn/conv_lowering.hpp"
#include "nn/norm.hpp"
#include "nn/onednn.hpp"

namespace dfp::nn {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

// A reorder from `from` to `to` when the layouts differ, else an empty primitive.
dnnl::reorder reorder_if_needed(const memory::desc& from, const memory::desc& to) {
    if (from == to) return {};
    return dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), from, cpu_engine(), to));
}

}  // namespace

// Activations stay in the user's NHWC (oneDNN's NHWC kernels avoid two activation reorders per
// pass); weights use format_tag::any, since the blocked layout oneDNN picks pays for the reorder
// of this small tensor. The backward primitives are made on the first backward, so inference
// pays only for forward.
struct Conv2d::OnednnPlan {
    memory::desc src_md, dst_md, user_wei_md, bias_md;
    memory::dims strides, padding;
    dnnl::convolution_forward::primitive_desc fwd_pd;
    dnnl::convolution_forward fwd;
    dnnl::reorder wei_to_fwd;  // user -> fwd weights layout, empty when the same
    memory fwd_wei;            // with wei_to_fwd: the weights in fwd_pd's layout, per forward

    dnnl::convolution_backward_data bwd_data;
    dnnl::reorder wei_to_bwd_data;  // fwd weights layout -> bwd data layout, empty when the same
    memory bwd_data_wei;
    dnnl::convolution_backward_weights bwd_wei;
    dnnl::reorder diff_wei_to_user;  // empty when oneDNN writes ohwi itself
    memory diff_wei;                 // in bwd_wei's layout
    std::vector<float> diff_wei_user;
};

namespace {
// The weight shape (K, KH, KW, C), after checking the configuration.
Shape conv_weight_shape(const std::string& name, const Conv2dConfig& config) {
    if (config.in_channels < 1 || config.out_channels < 1 || config.kernel < 1 ||
        config.stride < 1 || config.pad < 0)
        throw Error("conv2d '" + name +
                    "': needs in_channels, out_channels, kernel, stride >= 1 and pad >= 0, got " +
                    std::to_string(config.in_channels) + ", " +
                    std::to_string(config.out_channels) + ", " + std::to_string(config.kernel) +
                    ", " + std::to_string(config.stride) + ", " + std::to_string(config.pad));
    return {std::size_t(config.out_channels), std::size_t(config.kernel),
            std::size_t(config.kernel), std::size_t(config.in_channels)};
}
}  // namespace

Conv2d::Conv2d(std::string name, const Conv2dConfig& config)
    : Layer(std::move(name)),
      config_(config),
      weight_(this->name() + ".weight", conv_weight_shape(this->name(), config)),
      q16_{{this->name() + ".src"},
           {this->name() + ".weight"},
           {this->name() + ".weight.flipped"},
           {this->name() + ".diff_dst"}},
      q8_{{this->name() + ".src"},
          {this->name() + ".weight"},
          {this->name() + ".weight.flipped"},
          {this->name() + ".diff_dst"}},
      weight_t_q_{this->name() + ".weight.transposed"},
      diff_dst_t_q_{this->name() + ".diff_dst.transposed"},
      src_t_q_{this->name() + ".src.transposed"} {
    init_he_uniform(weight_, config.in_channels * config.kernel * config.kernel);
    if (config.bias) bias_.emplace(this->name() + ".bias", Shape{std::size_t(config.out_channels)});
}

Conv2d::~Conv2d() = default;

std::vector<Param*> Conv2d::params() {
    if (bias_) return {&weight_, &*bias_};
    return {&weight_};
}

ConvGeometry Conv2d::geometry(const Shape& src) const {
    if (src.size() != 4 || static_cast<std::int64_t>(src[3]) != config_.in_channels)
        fail("expects an NHWC input with " + std::to_string(config_.in_channels) +
             " channels, got shape " + shape_string(src));
    ConvGeometry g{};
    g.n = static_cast<std::int64_t>(src[0]);
    g.h = static_cast<std::int64_t>(src[1]);
    g.w = static_cast<std::int64_t>(src[2]);
    g.c = config_.in_channels;
    g.k = config_.out_channels;
    g.kernel = config_.kernel;
    g.stride = config_.stride;
    g.pad = config_.pad;
    const std::int64_t span_h = g.h + 2 * g.pad - g.kernel, span_w = g.w + 2 * g.pad - g.kernel;
    if (g.n < 1 || span_h < 0 || span_w < 0)
        fail("input " + shape_string(src) + " is empty or smaller than the " +
             std::to_string(g.kernel) + "x" + std::to_string(g.kernel) + " kernel with padding " +
             std::to_string(g.pad));
    g.oh = span_h / g.stride + 1;
    g.ow = span_w / g.stride + 1;
    return g;
}

Conv2d::OnednnPlan& Conv2d::plan(const ConvGeometry& g) {
    auto& slot = plans_[{g.n, g.h, g.w}];
    if (slot) return *slot;
    auto p = std::make_unique<OnednnPlan>();
    try {
        p->src_md = memory::desc({g.n, g.c, g.h, g.w}, kF32, Tag::nhwc);
        p->dst_md = memory::desc({g.n, g.k, g.oh, g.ow}, kF32, Tag::nhwc);
        p->user_wei_md = memory::desc({g.k, g.c, g.kernel, g.kernel}, kF32, Tag::ohwi);
        p->bias_md = memory::desc({g.k}, kF32, Tag::x);
        p->strides = {g.stride, g.stride};
        // oneDNN checks (H + pad_l + pad_r - KH) / stride + 1 == OH with floor division, as here.
        p->padding = {g.pad, g.pad};
        const memory::desc wei_any({g.k, g.c, g.kernel, g.kernel}, kF32, Tag::any);
        const auto desc =
            bias_
                ? dnnl::convolution_forward::desc(
                      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                      p->src_md, wei_any, p->bias_md, p->dst_md, p->strides, p->padding, p->padding)
                : dnnl::convolution_forward::desc(
                      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                      p->src_md, wei_any, p->dst_md, p->strides, p->padding, p->padding);
        p->fwd_pd = dnnl::convolution_forward::primitive_desc(desc, cpu_engine());
        p->fwd = dnnl::convolution_forward(p->fwd_pd);
        p->wei_to_fwd = reorder_if_needed(p->user_wei_md, p->fwd_pd.weights_desc());
        if (p->wei_to_fwd) p->fwd_wei = memory(p->fwd_pd.weights_desc(), cpu_engine());
    } catch (const dnnl::error& e) {
        fail(
            "oneDNN cannot set up the forward convolution for input " +
            shape_string({std::size_t(g.n), std::size_t(g.h), std::size_t(g.w), std::size_t(g.c)}) +
            ": " + e.what());
    }
    slot = std::move(p);
    return *slot;
}

void Conv2d::forward(Srcs src, Tensor& dst, const Context& ctx) {
    expect_srcs(src, 1);
    iteration_ = ctx.iteration;
    // A new step: a gradient a consumer quantized for a backward that failed before this layer's
    // ran is void (output_gradient_quantization).
    q16_.diff_dst.produced = false;
    const ConvGeometry g = geometry(src[0]->shape);
    dst.resize({std::size_t(g.n), std::size_t(g.oh), std::size_t(g.ow), std::size_t(g.k)});
    MomentBlocks* moments = nullptr;  // the integer GEMMs hand a consumer the moments of dst
    for (Layer* consumer : consumers_)
        if ((moments = consumer->input_moments(*this, dst.shape, ctx)) != nullptr) break;
    switch (config_.precision.compute) {
        case precision::Compute::fp32:
            forward_fp32(g, src[0]->data.data(), dst.data.data());
            break;
        case precision::Compute::dfp16:
            forward_dfp<std::int16_t>(g, src[0]->data.data(), dst.data.data(), moments);
            break;
        case precision::Compute::dfp8:
            if (block_scaled(config_.precision))
                forward_block_scaled(g, src[0]->data.data(), dst.data.data());
            else
                forward_dfp<std::int8_t>(g, src[0]->data.data(), dst.data.data(), moments);
            break;
    }
}

void Conv2d::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

void Conv2d::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                           Overwrite overwrite) {
    expect_srcs(src, 1);
    const ConvGeometry g = geometry(src[0]->shape);
    expect_shape(diff_dst, dst.shape, "diff_dst");
    float* diff_src_data = diff_src[0] ? diff_src[0]->data.data() : nullptr;
    const bool add = !overwrite[0];
    const bool per_tensor_dfp =
        config_.precision.compute != precision::Compute::fp32 && !block_scaled(config_.precision);
    // Through a fused ReLU diff_dst counts where dst > 0: the integer paths mask it as they
    // quantize it (and sum it for the bias), the others take a masked copy.
    const float* keep = config_.relu && per_tensor_dfp ? dst.data.data() : nullptr;
    const float* dy = diff_dst.data.data();
    if (config_.relu && !per_tensor_dfp) {
        relu_diff_.resize(diff_dst.numel());
        relu_backward(relu_diff_.data(), dst.data.data(), dy, std::int64_t(diff_dst.numel()),
                      false);
        dy = relu_diff_.data();
    }
    switch (config_.precision.compute) {
        case precision::Compute::fp32:
            backward_fp32(g, src[0]->data.data(), dy, diff_src_data, add);
            break;
        case precision::Compute::dfp16:
            backward_dfp<std::int16_t>(g, dy, keep, diff_src_data, add);
            break;
        case precision::Compute::dfp8:
            if (block_scaled(config_.precision))
                backward_block_scaled(g, src[0]->data.data(), dy, diff_src_data, add);
            else
                backward_dfp<std::int8_t>(g, dy, keep, diff_src_data, add);
            break;
    }
}

void Conv2d::forward_fp32(const ConvGeometry& g, const float* src, float* dst) {
    OnednnPlan& p = plan(g);
    dnnl::stream& stream = cpu_stream();
    memory user_wei(p.user_wei_md, cpu_engine(), weight_.value.data());
    memory wei = user_wei;
    if (p.wei_to_fwd) {
        p.wei_to_fwd.execute(stream, user_wei, p.fwd_wei);
        wei = p.fwd_wei;
    }
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(p.src_md, cpu_engine(), const_cast<float*>(src))},
        {DNNL_ARG_WEIGHTS, wei},
        {DNNL_ARG_DST, memory(p.dst_md, cpu_engine(), dst)}};
    if (bias_) args[DNNL_ARG_BIAS] = memory(p.bias_md, cpu_engine(), bias_->value.data());
    p.fwd.execute(stream, args);
    stream.wait();
    // In a pass of its own: oneDNN's ReLU post-op turns NaN into 0 (even with alpha -0), which
    // would hide a diverging run from the loss check.
    if (config_.relu) relu_forward(dst, dst, g.n * g.oh * g.ow * g.k);
}

void Conv2d::backward_fp32(const ConvGeometry& g, const float* src, const float* diff_dst,
                           float* diff_src, bool add) {
    OnednnPlan& p = plan(g);
    dnnl::stream& stream = cpu_stream();
    try {
        if (!p.bwd_wei) {
            const memory::desc wei_any({g.k, g.c, g.kernel, g.kernel}, kF32, Tag::any);
            const dnnl::convolution_backward_data::primitive_desc data_pd(
                dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, p.src_md,
                                                      wei_any, p.dst_md, p.strides, p.padding,
                                                      p.padding),
                cpu_engine(), p.fwd_pd);
            p.bwd_data = dnnl::convolution_backward_data(data_pd);
            p.wei_to_bwd_data = reorder_if_needed(p.fwd_pd.weights_desc(), data_pd.weights_desc());
            p.bwd_data_wei = memory(data_pd.weights_desc(), cpu_engine());
            // Without the bias: oneDNN's backward weights with a bias gradient ran 1.7x (7x7, 3
            // channels) to 5x (3x3, 3 channels) slower; add_column_sums does the bias instead.
            const auto wei_desc = dnnl::convolution_backward_weights::desc(
                dnnl::algorithm::convolution_direct, p.src_md, wei_any, p.dst_md, p.strides,
                p.padding, p.padding);
            const dnnl::convolution_backward_weights::primitive_desc wei_pd(wei_desc, cpu_engine(),
                                                                            p.fwd_pd);
            p.bwd_wei = dnnl::convolution_backward_weights(wei_pd);
            p.diff_wei = memory(wei_pd.diff_weights_desc(), cpu_engine());
            p.diff_wei_to_user = reorder_if_needed(wei_pd.diff_weights_desc(), p.user_wei_md);
            p.diff_wei_user.resize(weight_.value.size());
        }
    } catch (const dnnl::error& e) {
        fail(std::string("oneDNN cannot set up the backward convolution: ") + e.what());
    }
    const memory diff_dst_mem(p.dst_md, cpu_engine(), const_cast<float*>(diff_dst));

    if (diff_src) {
        // The weights are still in fwd_wei (or the user buffer) from the forward of this step.
        memory wei =
            p.wei_to_fwd ? p.fwd_wei : memory(p.user_wei_md, cpu_engine(), weight_.value.data());
        if (p.wei_to_bwd_data) {
            p.wei_to_bwd_data.execute(stream, wei, p.bwd_data_wei);
            wei = p.bwd_data_wei;
        }
        // oneDNN overwrites its output: into diff_src itself when that is fresh.
        const GradOutput out(diff_src, g.n * g.h * g.w * g.c, !add, diff_src_scratch_);
        p.bwd_data.execute(stream,
                           {{DNNL_ARG_DIFF_DST, diff_dst_mem},
                            {DNNL_ARG_WEIGHTS, wei},
                            {DNNL_ARG_DIFF_SRC, memory(p.src_md, cpu_engine(), out.data())}});
        stream.wait();
        out.finish();
    }

    // oneDNN stores the weight gradient: into the gradient itself when it was cleared, else
    // into a buffer added to it.
    const bool add_wei = weight_.begin_grad();
    memory user_diff_wei(p.user_wei_md, cpu_engine(),
                         add_wei ? p.diff_wei_user.data() : weight_.grad.data());
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(p.src_md, cpu_engine(), const_cast<float*>(src))},
        {DNNL_ARG_DIFF_DST, diff_dst_mem},
        {DNNL_ARG_DIFF_WEIGHTS, p.diff_wei_to_user ? p.diff_wei : user_diff_wei}};
    p.bwd_wei.execute(stream, args);
    if (p.diff_wei_to_user) p.diff_wei_to_user.execute(stream, p.diff_wei, user_diff_wei);
    stream.wait();
    if (add_wei)
        accumulate(weight_.grad.data(), p.diff_wei_user.data(),
                   static_cast<std::int64_t>(weight_.grad.size()));
    if (bias_) add_column_sums(bias_->settle_grad().data(), diff_dst, g.n * g.oh * g.ow, g.k);
}

namespace {
// The patch matrix of m (a quantized NHWC tensor) as a GEMM operand filled while packing.
template <class M>
DfpOperand<M> patch_operand(const QuantMatrix<M>& m, const PatchSource<M>& patches) {
    return {m, patches.rows(), patches.cols(), patches.block_source()};
}
template <class M>
bool per_tensor(const QuantMatrix<M>& m) {
    return m.q.format.granularity == Granularity::tensor;
}
}  // namespace

template <>
Conv2d::Quantized<std::int16_t>& Conv2d::quantized() {
    return q16_;
}
template <>
Conv2d::Quantized<std::int8_t>& Conv2d::quantized() {
    return q8_;
}

void Conv2d::add_input_sibling(Layer& earlier) {
    auto* conv = dynamic_cast<const Conv2d*>(&earlier);
    if (src_sibling_ == nullptr && conv != nullptr) src_sibling_ = conv;
}

Layer::QuantizationTarget Conv2d::input_quantization(const Shape& src) {
    const precision::LayerPrecision& prec = config_.precision;
    if (prec.compute != precision::Compute::dfp16 ||
        prec.activations.format.granularity != Granularity::tensor)
        return {};
    try {
        if (subsamples_src(geometry(src))) return {};  // it quantizes its im2col patches
    } catch (const Error&) {
        return {};  // forward names the problem
    }
    return {&q16_.src, prec.activations};
}

Layer::QuantizationTarget Conv2d::output_gradient_quantization(const Shape& dst) {
    const precision::LayerPrecision& prec = config_.precision;
    if (prec.compute != precision::Compute::dfp16 ||
        prec.gradients.format.granularity != Granularity::tensor || config_.relu ||
        consumers_.size() != 1 || dst.size() != 4 || std::int64_t(dst[3]) != config_.out_channels)
        return {};
    // backward_dfp reads diff_dst itself only to quantize it (take_produced failed) and for the
    // bias.
    return {&q16_.diff_dst, prec.gradients, bias_.has_value()};
}

template <class M>
const QuantMatrix<M>* Conv2d::sibling_src(const float* src, std::int64_t rows,
                                          std::int64_t cols) const {
    if (src_sibling_ == nullptr) return nullptr;
    const precision::LayerPrecision& mine = config_.precision;
    const QuantMatrix<M>& theirs = src_sibling_->quantized<M>().src;
    return src_sibling_->config_.precision.compute == mine.compute &&
                   theirs.holds(src, rows, cols, mine.activations, iteration_)
               ? &theirs
               : nullptr;
}

template <class M>
const QuantMatrix<M>& Conv2d::forward_src() const {
    return src_from_sibling_ ? src_sibling_->quantized<M>().src : quantized<M>().src;
}

// FPROP dst (N*OH*OW, K) = src (N*OH*OW, KH*KW*C) wei^T + bias (added by the GEMM as it writes
// dst), src's patches made while packing unless direct or subsampled; the weights are quantized
// from the FP32 master on every forward (SGD updates the master).
template <class M>
void Conv2d::forward_dfp(const ConvGeometry& g, const float* src, float* dst,
                         MomentBlocks* moments) {
    const precision::LayerPrecision& prec = config_.precision;
    Quantized<M>& q = quantized<M>();
    src_from_sibling_ = false;
    if (subsamples_src(g)) {
        patches_.resize(std::size_t(g.n * g.oh * g.ow * g.c));
        im2col(src, patch_geometry(g), patches_.data());
        q.src.quantize(patches_.data(), g.n * g.oh * g.ow, g.c, prec.activations, iteration_);
    } else if (q.src.take_produced(src, g.n * g.h * g.w, g.c, prec.activations, iteration_)) {
        // The layer that wrote src quantized it too (input_quantization).
    } else if (sibling_src<M>(src, g.n * g.h * g.w, g.c) != nullptr) {
        src_from_sibling_ = true;
    } else {
        q.src.quantize(src, g.n * g.h * g.w, g.c, prec.activations, iteration_);
    }
    q.weight.quantize(weight_.value.data(), g.k, g.kernel * g.kernel * g.c, prec.weights,
                      iteration_);
    const QuantMatrix<M>& s = forward_src<M>();
    const PatchSource<M> patches{s.q.mantissas.data(), patch_geometry(g)};
    std::function<void(std::int64_t, std::int64_t)> rows_done;
    if (moments != nullptr) {
        moments->begin(g.n * g.oh * g.ow, g.k);
        rows_done = [moments, dst, k = g.k](std::int64_t row0, std::int64_t rows) {
            moments->add(dst + row0 * k, row0, rows);
        };
    }
    dfp_gemm<M>(*this, "fprop", gemm_src("fprop", g, s, patches), kernels::Op::n, q.weight,
                kernels::Op::t, dst, false, bias_ ? bias_->value.data() : nullptr, config_.relu,
                std::move(rows_done));
    if (moments != nullptr) moments->end(dst, iteration_);
}

template <class M>
DfpOperand<M> Conv2d::gemm_src(const char* pass, const ConvGeometry& g, const QuantMatrix<M>& src,
                               const PatchSource<M>& patches) const {
    if (is_direct_gemm(g) || subsamples_src(g)) return src;
    // A per-pixel or per-channel exponent would vary along the patch rows or K.
    if (!per_tensor(src))
        fail(std::string(pass) + ": tensor '" + src.name + "' in format " + src.q.format.name() +
             " cannot be lowered to patches; use one exponent per tensor");
    return patch_operand(src, patches);
}

template <class M>
void Conv2d::backward_dfp(const ConvGeometry& g, const float* diff_dst, const float* keep,
                          float* diff_src, bool add) {
    Quantized<M>& q = quantized<M>();
    const std::int64_t rows = g.n * g.oh * g.ow;
    const std::int64_t src_rows = subsamples_src(g) ? rows : g.n * g.h * g.w;
    const QuantMatrix<M>& s = forward_src<M>();
    if (s.q.shape != Shape{std::size_t(src_rows), std::size_t(g.c)})
        fail(std::string(precision::compute_name(config_.precision.compute)) +
             " backward without a forward in that precision on this input");
    // The layer that wrote diff_dst may have quantized it too (output_gradient_quantization).
    if (keep != nullptr ||
        !q.diff_dst.take_produced(diff_dst, rows, g.k, config_.precision.gradients, iteration_))
        q.diff_dst.quantize(diff_dst, rows, g.k, config_.precision.gradients, iteration_, keep);
    if (diff_src) {
        if (is_direct_gemm(g)) {
            // BPROP: diff_src (N*H*W, C) (+)= diff_dst (N*H*W, K) wei (K, C).
            dfp_gemm<M>(*this, "bprop", q.diff_dst, kernels::Op::n, q.weight, kernels::Op::n,
                        diff_src, add);
        } else if (per_tensor(q.weight) && per_tensor(q.diff_dst)) {
            // BPROP: stride^2 stride-1 convolutions of diff_dst, one per phase of the input pixels
            // (nn/conv_lowering.hpp): diff_src (N*H*W, C) (+)= patches of diff_dst (N*H*W,
            // KH*KW*K) x the flipped weights (KH*KW*K, C) at stride 1, else each phase into its
            // block of diff_col_, scattered onto the pixels.
            const bool direct = g.stride == 1;
            if (!direct) diff_col_.resize(std::size_t(g.n * g.h * g.w * g.c));
            float* out = direct ? diff_src : diff_col_.data();
            for (std::int64_t ph = 0; ph < g.stride; ++ph)
                for (std::int64_t pw = 0; pw < g.stride; ++pw) {
                    const BpropPhase phase = bprop_phase(g, ph, pw);
                    if (phase.empty()) continue;
                    phase_weights(q.weight.q, g, phase, q.weight_flip.q);
                    const PatchSource<M> patches{q.diff_dst.q.mantissas.data(), phase.patches};
                    dfp_gemm<M>(*this, "bprop", patch_operand(q.diff_dst, patches), kernels::Op::n,
                                q.weight_flip, kernels::Op::n, out, direct && add);
                    out += patches.rows() * g.c;
                }
            if (!direct) scatter_phases(diff_src, diff_col_.data(), g, add);
        } else {
            // BPROP: the patch gradients diff_dst (N*OH*OW, K) wei (K, KH*KW*C), in FP32, summed
            // back onto the pixels.
            diff_col_.resize(std::size_t(rows * g.kernel * g.kernel * g.c));
            dfp_gemm<M>(*this, "bprop", q.diff_dst, kernels::Op::n, q.weight, kernels::Op::n,
                        diff_col_.data(), false);
            if (!add) std::fill_n(diff_src, g.n * g.h * g.w * g.c, 0.0f);
            col2im_add(diff_src, diff_col_.data(), g);
        }
    }
    // WTGRAD: wei.grad (K, KH*KW*C) += diff_dst^T src, src as forward quantized it (its patches).
    const PatchSource<M> patches{s.q.mantissas.data(), patch_geometry(g)};
    dfp_gemm<M>(*this, "wtgrad", q.diff_dst, kernels::Op::t, gemm_src("wtgrad", g, s, patches),
                kernels::Op::n, weight_.grad.data(), weight_.begin_grad());
    if (bias_) add_column_sums(bias_->settle_grad().data(), diff_dst, rows, g.k, keep);
}

// FPROP as forward_dfp, on the explicit FP32 patch matrix quantized in blocks along its K.
void Conv2d::forward_block_scaled(const ConvGeometry& g, const float* src, float* dst) {
    const precision::LayerPrecision& prec = config_.precision;
    const std::int64_t rows = g.n * g.oh * g.ow, patch = g.kernel * g.kernel * g.c;
    if (!is_direct_gemm(g)) {
        patches_.resize(std::size_t(rows * patch));
        im2col(src, patch_geometry(g), patches_.data());
        src = patches_.data();
    }
    q8_.src.quantize(src, rows, patch, prec.activations, iteration_);
    q8_.weight.quantize(weight_.value.data(), g.k, patch, prec.weights, iteration_);
    dfp_gemm<std::int8_t>(*this, "fprop", q8_.src, kernels::Op::n, q8_.weight, kernels::Op::t, dst,
                          false, bias_ ? bias_->value.data() : nullptr, config_.relu);
}

void Conv2d::backward_block_scaled(const ConvGeometry& g, const float* src, const float* diff_dst,
                                   float* diff_src, bool add) {
    const precision::LayerPrecision& prec = config_.precision;
    const std::int64_t rows = g.n * g.oh * g.ow, patch = g.kernel * g.kernel * g.c;
    if (q8_.src.q.shape != Shape{std::size_t(rows), std::size_t(patch)})
        fail("dfp8 backward without a dfp8 forward on this input");
    const bool direct = is_direct_gemm(g);
    if (diff_src) {
        // BPROP: (N*OH*OW, KH*KW*C) = diff_dst (N*OH*OW, K) x wei (K, KH*KW*C), K the reduction:
        // diff_dst in blocks along its rows, the weights transposed.
        q8_.diff_dst.quantize(diff_dst, rows, g.k, prec.gradients, iteration_);
        weight_t_q_.quantize_transposed(weight_.value.data(), g.k, patch, prec.weights, iteration_);
        if (!direct) diff_col_.resize(std::size_t(rows * patch));
        dfp_gemm<std::int8_t>(*this, "bprop", q8_.diff_dst, kernels::Op::n, weight_t_q_,
                              kernels::Op::t, direct ? diff_src : diff_col_.data(), direct && add);
        if (!direct) {
            if (!add) std::fill_n(diff_src, g.n * g.h * g.w * g.c, 0.0f);
            col2im_add(diff_src, diff_col_.data(), g);
        }
    }
    // WTGRAD: wei.grad (K, KH*KW*C) += diff_dst^T x patches, N*OH*OW the reduction: both
    // transposed so that their blocks run along it. The patches are forward's, still in patches_.
    diff_dst_t_q_.quantize_transposed(diff_dst, rows, g.k, prec.gradients, iteration_);
    src_t_q_.quantize_transposed(direct ? src : patches_.data(), rows, patch, prec.activations,
                                 iteration_);
    dfp_gemm<std::int8_t>(*this, "wtgrad", diff_dst_t_q_, kernels::Op::n, src_t_q_, kernels::Op::t,
                          weight_.grad.data(), weight_.begin_grad());
    if (bias_) add_column_sums(bias_->settle_grad().data(), diff_dst, rows, g.k);
}

}  // namespace dfp::nn
