#include "bench/conv_bench.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <dnnl.hpp>
#include <limits>
#include <random>

#include "base/error.hpp"
#include "bench/timing.hpp"
#include "format/quantize.hpp"

namespace dfp::bench {

std::vector<ConvLayerShape> resnet50_conv_layers() {
    constexpr std::int64_t kBatch = 16;
    return {
        {"res2_3x3", kBatch, 56, 56, 64, 64, 3, 1, 1},
        {"res2_1x1_expand", kBatch, 56, 56, 64, 256, 1, 1, 0},
        {"res2_1x1_reduce", kBatch, 56, 56, 256, 64, 1, 1, 0},
        {"res3_3x3_stride2", kBatch, 56, 56, 128, 128, 3, 2, 1},
        {"res3_3x3", kBatch, 28, 28, 128, 128, 3, 1, 1},
        {"res4_3x3", kBatch, 14, 14, 256, 256, 3, 1, 1},
    };
}

std::vector<ConvLayerShape> select_conv_layers(const std::vector<std::string>& names) {
    const std::vector<ConvLayerShape> all = resnet50_conv_layers();
    std::vector<ConvLayerShape> out;
    for (const std::string& name : names) {
        const auto it = std::find_if(all.begin(), all.end(),
                                     [&](const ConvLayerShape& l) { return l.name == name; });
        if (it == all.end()) {
            std::string known;
            for (const ConvLayerShape& l : all) known += (known.empty() ? "" : ", ") + l.name;
            throw Error("--layers: unknown layer '" + name + "' (known: " + known + ")");
        }
        out.push_back(*it);
    }
    return out;
}

ConvLayerShape parse_conv_shape(const std::string& text) {
    std::vector<std::int64_t> v;
    bool ok = true;
    for (std::size_t begin = 0; ok && begin <= text.size();) {
        const std::size_t end = std::min(text.find(',', begin), text.size());
        std::int64_t x = 0;
        const auto [ptr, ec] = std::from_chars(text.data() + begin, text.data() + end, x);
        ok = ec == std::errc() && ptr == text.data() + end;
        v.push_back(x);
        begin = end + 1;
    }
    ok = ok && v.size() >= 6 && v.size() <= 8;
    for (std::size_t i = 0; ok && i < v.size(); ++i) ok = v[i] > 0 || (i == 7 && v[i] == 0);
    if (!ok)
        throw Error("--shape '" + text +
                    "': expected N,H,W,C,K,KERNEL[,STRIDE[,PAD]] (positive; PAD may be 0)");
    ConvLayerShape l{"",
                     v[0],
                     v[1],
                     v[2],
                     v[3],
                     v[4],
                     v[5],
                     v.size() > 6 ? v[6] : 1,
                     v.size() > 7 ? v[7] : v[5] / 2};
    if (l.h + 2 * l.pad < l.kernel || l.w + 2 * l.pad < l.kernel)
        throw Error("--shape '" + text + "': the kernel is larger than the padded image");
    l.name = std::to_string(l.c) + "to" + std::to_string(l.k) + "_" + std::to_string(l.kernel) +
             "x" + std::to_string(l.kernel) + "s" + std::to_string(l.stride) + "_" +
             std::to_string(l.h) + "x" + std::to_string(l.w) + "_n" + std::to_string(l.n);
    return l;
}

const char* conv_impl_name(ConvImpl impl) {
    switch (impl) {
        case ConvImpl::dfp16:
            return "dfp16";
        case ConvImpl::onednn_fp32:
            return "onednn_fp32";
        case ConvImpl::onednn_bf16:
            return "onednn_bf16";
        case ConvImpl::dfp8:
            return "dfp8";
        case ConvImpl::onednn_s8:
            return "onednn_s8";
    }
    return "?";
}

const char* conv_pass_name(ConvPass pass) {
    switch (pass) {
        case ConvPass::fprop:
            return "fprop";
        case ConvPass::bprop:
            return "bprop";
        case ConvPass::wtgrad:
            return "wtgrad";
    }
    return "?";
}

double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
    if (got.size() != want.size()) throw Error("relative_error: tensors of different sizes");
    double diff2 = 0, want2 = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double d = double(got[i]) - double(want[i]);
        diff2 += d * d;
        want2 += double(want[i]) * double(want[i]);
    }
    if (want2 == 0) return diff2 == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    return std::sqrt(diff2 / want2);
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

nn::Conv2dConfig conv2d_config(const ConvLayerShape& l, const precision::LayerPrecision& p) {
    return {.in_channels = l.c,
            .out_channels = l.k,
            .kernel = l.kernel,
            .stride = l.stride,
            .pad = l.pad,
            .bias = false,
            .precision = p};
}

nn::Tensor normal_tensor(const Shape& shape, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    nn::Tensor t(shape);
    for (float& x : t.data) x = normal(rng);
    return t;
}

}  // namespace

// The three primitives on bf16 data prepared once (conversions and weight reorders outside the
// timed region); their outputs stay in oneDNN's types and layouts until outputs() converts them.
struct ConvBenchCase::OnednnBf16 {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    memory::desc user_src_md, user_dst_md, user_wei_md;  // FP32 NHWC, NHWC, ohwi
    dnnl::convolution_forward::primitive_desc fwd_pd;
    dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
    dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
    dnnl::convolution_forward fwd;
    dnnl::convolution_backward_data bwd_data;
    dnnl::convolution_backward_weights bwd_weights;
    memory src, fwd_wei, dst, diff_dst, bwd_data_wei, diff_src, diff_wei;

    // A new memory of `md` holding `data` (FP32 in `user_md`), converted by a oneDNN reorder.
    memory converted(const memory::desc& md, const memory::desc& user_md, const float* data) {
        memory out(md, engine);
        memory user(user_md, engine, const_cast<float*>(data));
        dnnl::reorder(user, out).execute(stream, user, out);
        stream.wait();
        return out;
    }
    // `m` as FP32 in `user_md`.
    std::vector<float> to_user(memory m, const memory::desc& user_md) {
        std::vector<float> out(user_md.get_size() / sizeof(float));
        memory user(user_md, engine, out.data());
        dnnl::reorder(m, user).execute(stream, m, user);
        stream.wait();
        return out;
    }
};

// oneDNN's int8 forward convolution on src and weights quantized once (as oneDNN's int8 inference
// recipe: per-tensor scales, outside the timed region).
struct ConvBenchCase::OnednnS8 {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward fwd;
    memory src, wei, dst;
};

ConvBenchCase::ConvBenchCase(const ConvLayerShape& layer, const precision::LayerPrecision& dfp16,
                             std::uint32_t seed)
    : dfp16_(layer.name, conv2d_config(layer, dfp16)),
      fp32_(layer.name, conv2d_config(layer, {})),
      dfp8_(layer.name,
            conv2d_config(layer, precision::Policy::dfp8().for_layer(layer.name, 1, 3))),
      geometry_(fp32_.geometry({std::size_t(layer.n), std::size_t(layer.h), std::size_t(layer.w),
                                std::size_t(layer.c)})),
      bf16_(std::make_unique<OnednnBf16>()),
      s8_(std::make_unique<OnednnS8>()) {
    const nn::ConvGeometry& g = geometry_;
    src_ = normal_tensor({std::size_t(g.n), std::size_t(g.h), std::size_t(g.w), std::size_t(g.c)},
                         seed);
    diff_dst_ = normal_tensor(
        {std::size_t(g.n), std::size_t(g.oh), std::size_t(g.ow), std::size_t(g.k)}, seed + 1);
    dfp16_.weight().value = fp32_.weight().value;  // the same name gives the same init; made sure
    dfp8_.weight().value = fp32_.weight().value;

    OnednnBf16& b = *bf16_;
    const memory::dims src_dims{g.n, g.c, g.h, g.w}, dst_dims{g.n, g.k, g.oh, g.ow},
        wei_dims{g.k, g.c, g.kernel, g.kernel}, strides{g.stride, g.stride}, padding{g.pad, g.pad};
    b.user_src_md = memory::desc(src_dims, DataType::f32, Tag::nhwc);
    b.user_dst_md = memory::desc(dst_dims, DataType::f32, Tag::nhwc);
    b.user_wei_md = memory::desc(wei_dims, DataType::f32, Tag::ohwi);
    const memory::desc src_md(src_dims, DataType::bf16, Tag::nhwc),
        dst_md(dst_dims, DataType::bf16, Tag::nhwc), wei_md(wei_dims, DataType::bf16, Tag::any),
        diff_wei_md(wei_dims, DataType::f32, Tag::any);
    try {
        b.fwd_pd = dnnl::convolution_forward::primitive_desc(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                            dnnl::algorithm::convolution_direct, src_md, wei_md,
                                            dst_md, strides, padding, padding),
            b.engine);
        b.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
            dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, src_md,
                                                  wei_md, dst_md, strides, padding, padding),
            b.engine, b.fwd_pd);
        b.bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(
            dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src_md,
                                                     diff_wei_md, dst_md, strides, padding,
                                                     padding),
            b.engine, b.fwd_pd);
        b.fwd = dnnl::convolution_forward(b.fwd_pd);
        b.bwd_data = dnnl::convolution_backward_data(b.bwd_data_pd);
        b.bwd_weights = dnnl::convolution_backward_weights(b.bwd_weights_pd);
        const float* wei = fp32_.weight().value.data();
        b.src = b.converted(src_md, b.user_src_md, src_.data.data());
        b.diff_dst = b.converted(dst_md, b.user_dst_md, diff_dst_.data.data());
        b.fwd_wei = b.converted(b.fwd_pd.weights_desc(), b.user_wei_md, wei);
        b.bwd_data_wei = b.converted(b.bwd_data_pd.weights_desc(), b.user_wei_md, wei);
        b.dst = memory(dst_md, b.engine);
        b.diff_src = memory(src_md, b.engine);
        b.diff_wei = memory(b.bwd_weights_pd.diff_weights_desc(), b.engine);
    } catch (const dnnl::error& e) {
        // oneDNN has bf16 convolutions only from AVX-512 on: without them the column stays empty
        // and says why, rather than the other columns being lost.
        bf16_unavailable_ = std::string("unavailable on this CPU (") + e.what() + ")";
        bf16_.reset();
    }
    OnednnS8& q = *s8_;
    try {
        // DFP8, one exponent per tensor: oneDNN takes it as one output scale.
        src_s8_ = quantize<std::int8_t>(src_.data.data(), {src_.data.size()}, dfp8_tensor(), {},
                                        "bench.src");
        wei_s8_ = quantize<std::int8_t>(fp32_.weight().value.data(), {fp32_.weight().value.size()},
                                        dfp8_tensor(), {}, "bench.weight");
        const int es = src_s8_.exponents.at(0), ew = wei_s8_.exponents.at(0);
        const memory::desc src_md(src_dims, DataType::s8, Tag::nhwc),
            wei_md(wei_dims, DataType::s8, Tag::any), dst_md(dst_dims, DataType::f32, Tag::nhwc);
        dnnl::primitive_attr attr;
        attr.set_output_scales(0, {std::ldexp(1.0f, es + ew)});
        q.pd = dnnl::convolution_forward::primitive_desc(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct, src_md, wei_md,
                                            dst_md, strides, padding, padding),
            attr, q.engine);
        q.fwd = dnnl::convolution_forward(q.pd);
        q.src = memory(src_md, q.engine, src_s8_.mantissas.data());
        memory user_wei(memory::desc(wei_dims, DataType::s8, Tag::ohwi), q.engine,
                        wei_s8_.mantissas.data());
        q.wei = memory(q.pd.weights_desc(), q.engine);
        dnnl::reorder(user_wei, q.wei).execute(q.stream, user_wei, q.wei);
        q.dst = memory(dst_md, q.engine);
        q.stream.wait();
    } catch (const dnnl::error& e) {
        throw Error("bench conv: oneDNN cannot set up the int8 convolution for layer '" +
                    layer.name + "': " + e.what());
    }
}

ConvBenchCase::~ConvBenchCase() = default;

void ConvBenchCase::run_conv2d(nn::Conv2d& conv, ConvStep step, nn::Tensor& dst,
                               nn::Tensor& diff_src) {
    const nn::Tensor* srcs[] = {&src_};
    nn::Tensor* data_gradient[] = {&diff_src};
    nn::Tensor* no_data_gradient[] = {nullptr};
    switch (step) {
        case ConvStep::forward:
            conv.forward(srcs, dst, {});
            break;
        case ConvStep::backward:
            diff_src.resize(src_.shape);
            conv.backward(srcs, dst, diff_dst_, data_gradient);
            break;
        case ConvStep::backward_weights:
            conv.backward(srcs, dst, diff_dst_, no_data_gradient);
            break;
    }
}

void ConvBenchCase::run(ConvImpl impl, ConvStep step) {
    switch (impl) {
        case ConvImpl::dfp16:
            run_conv2d(dfp16_, step, dfp16_dst_, dfp16_diff_src_);
            return;
        case ConvImpl::onednn_fp32:
            run_conv2d(fp32_, step, fp32_dst_, fp32_diff_src_);
            return;
        case ConvImpl::dfp8:
            run_conv2d(dfp8_, step, dfp8_dst_, dfp8_diff_src_);
            return;
        case ConvImpl::onednn_s8:
            if (step == ConvStep::forward) {
                s8_->fwd.execute(s8_->stream, {{DNNL_ARG_SRC, s8_->src},
                                               {DNNL_ARG_WEIGHTS, s8_->wei},
                                               {DNNL_ARG_DST, s8_->dst}});
                s8_->stream.wait();
            }
            return;
        case ConvImpl::onednn_bf16:
            break;
    }
    if (!bf16_) throw Error("bench conv: oneDNN bf16 convolution " + bf16_unavailable_);
    OnednnBf16& b = *bf16_;
    if (step == ConvStep::forward)
        b.fwd.execute(
            b.stream,
            {{DNNL_ARG_SRC, b.src}, {DNNL_ARG_WEIGHTS, b.fwd_wei}, {DNNL_ARG_DST, b.dst}});
    if (step == ConvStep::backward)
        b.bwd_data.execute(b.stream, {{DNNL_ARG_DIFF_DST, b.diff_dst},
                                      {DNNL_ARG_WEIGHTS, b.bwd_data_wei},
                                      {DNNL_ARG_DIFF_SRC, b.diff_src}});
    if (step == ConvStep::backward || step == ConvStep::backward_weights)
        b.bwd_weights.execute(b.stream, {{DNNL_ARG_SRC, b.src},
                                         {DNNL_ARG_DIFF_DST, b.diff_dst},
                                         {DNNL_ARG_DIFF_WEIGHTS, b.diff_wei}});
    b.stream.wait();
}

ConvOutputs ConvBenchCase::conv2d_outputs(nn::Conv2d& conv, nn::Tensor& dst, nn::Tensor& diff_src) {
    // Backward adds into diff_src and the weight gradient; from zero they hold just this pass.
    std::fill(conv.weight().grad.begin(), conv.weight().grad.end(), 0.0f);
    diff_src.resize(src_.shape);
    std::fill(diff_src.data.begin(), diff_src.data.end(), 0.0f);
    run_conv2d(conv, ConvStep::forward, dst, diff_src);
    run_conv2d(conv, ConvStep::backward, dst, diff_src);
    return {{dst.data.begin(), dst.data.end()},
            {diff_src.data.begin(), diff_src.data.end()},
            conv.weight().grad};
}

ConvOutputs ConvBenchCase::outputs(ConvImpl impl) {
    switch (impl) {
        case ConvImpl::dfp16:
            return conv2d_outputs(dfp16_, dfp16_dst_, dfp16_diff_src_);
        case ConvImpl::onednn_fp32:
            return conv2d_outputs(fp32_, fp32_dst_, fp32_diff_src_);
        case ConvImpl::dfp8:
            return conv2d_outputs(dfp8_, dfp8_dst_, dfp8_diff_src_);
        case ConvImpl::onednn_s8:
            throw Error("bench conv: the oneDNN int8 column has no outputs to compare");
        case ConvImpl::onednn_bf16:
            break;
    }
    run(ConvImpl::onednn_bf16, ConvStep::forward);
    run(ConvImpl::onednn_bf16, ConvStep::backward);
    OnednnBf16& b = *bf16_;
    return {b.to_user(b.dst, b.user_dst_md), b.to_user(b.diff_src, b.user_src_md),
            b.to_user(b.diff_wei, b.user_wei_md)};
}

double ConvBenchCase::pass_flops() const {
    const nn::ConvGeometry& g = geometry_;
    return 2.0 * double(g.n * g.oh * g.ow) * double(g.k) * double(g.kernel * g.kernel * g.c);
}

std::string ConvBenchCase::onednn_bf16_impls() const {
    if (!bf16_) return bf16_unavailable_;
    return std::string("fwd ") + bf16_->fwd_pd.impl_info_str() + ", bwd_data " +
           bf16_->bwd_data_pd.impl_info_str() + ", bwd_weights " +
           bf16_->bwd_weights_pd.impl_info_str();
}

precision::LayerPrecision hidden_layer_precision(const std::string& spec,
                                                 const std::string& layer) {
    constexpr std::size_t kHiddenIndex = 1, kLayerCount = 3;
    const precision::LayerPrecision p =
        precision::Policy::parse(spec).for_layer(layer, kHiddenIndex, kLayerCount);
    if (p.compute != precision::Compute::dfp16)
        throw Error("--precision '" + spec + "': makes layer '" + layer +
                    "' FP32; the DFP16 column needs dfp16");
    return p;
}

namespace {

// In the order of the enums, so that an enum's value indexes these arrays.
constexpr std::array kImpls{ConvImpl::dfp16, ConvImpl::onednn_fp32, ConvImpl::onednn_bf16,
                            ConvImpl::dfp8, ConvImpl::onednn_s8};
constexpr std::array kPasses{ConvPass::fprop, ConvPass::bprop, ConvPass::wtgrad};
// Forward first: backward reuses what forward computed; backward_weights before backward, so that
// BPROP's time subtracts the WTGRAD sample of the same repetition.
constexpr std::array kSteps{ConvStep::forward, ConvStep::backward_weights, ConvStep::backward};
static_assert(kImpls[std::size_t(ConvImpl::onednn_s8)] == ConvImpl::onednn_s8 &&
              kPasses[std::size_t(ConvPass::wtgrad)] == ConvPass::wtgrad);

const std::vector<float>& pass_output(const ConvOutputs& o, ConvPass pass) {
    switch (pass) {
        case ConvPass::fprop:
            return o.dst;
        case ConvPass::bprop:
            return o.diff_src;
        case ConvPass::wtgrad:
            break;
    }
    return o.diff_wei;
}

// Seconds per pass, samples[impl][pass], one sample per repetition.
using PassSamples = std::array<std::array<std::vector<double>, kPasses.size()>, kImpls.size()>;

PassSamples time_passes(ConvBenchCase& bc, int repetitions, double min_sample_s) {
    // Warm-up (page faults, lazily made primitives) and the number of calls per sample.
    std::array<std::array<int, kSteps.size()>, kImpls.size()> calls{};
    const auto timed = [&bc](ConvImpl impl) {
        return impl != ConvImpl::onednn_bf16 || bc.has_onednn_bf16();
    };
    for (ConvImpl impl : kImpls)
        for (std::size_t s = 0; s < kSteps.size() && timed(impl); ++s) {
            auto step = [&] { bc.run(impl, kSteps[s]); };
            step();
            calls[std::size_t(impl)][s] = calls_per_sample(seconds_per_call(step, 1), min_sample_s);
        }
    PassSamples samples;
    for (int r = 0; r < repetitions; ++r)
        for (std::size_t s = 0; s < kSteps.size(); ++s)
            for (ConvImpl impl : kImpls) {
                if (!timed(impl) || (impl == ConvImpl::onednn_s8 && kSteps[s] != ConvStep::forward))
                    continue;
                auto& t = samples[std::size_t(impl)];
                const double step_s =
                    seconds_per_call([&] { bc.run(impl, kSteps[s]); }, calls[std::size_t(impl)][s]);
                switch (kSteps[s]) {
                    case ConvStep::forward:
                        t[std::size_t(ConvPass::fprop)].push_back(step_s);
                        break;
                    case ConvStep::backward_weights:
                        t[std::size_t(ConvPass::wtgrad)].push_back(step_s);
                        break;
                    case ConvStep::backward:
                        t[std::size_t(ConvPass::bprop)].push_back(
                            step_s - t[std::size_t(ConvPass::wtgrad)].back());
                        break;
                }
            }
    return samples;
}

}  // namespace

std::vector<ConvBenchRecord> run_conv_bench(const ConvBenchConfig& config,
                                            void (*progress)(const ConvBenchRecord&)) {
    if (config.repetitions < 1) throw Error("--reps: must be >= 1");
    for (int threads : config.threads)
        if (threads < 1) throw Error("--threads: must be >= 1");
    constexpr double kMsPerS = 1e3, kGigaPerUnit = 1e-9;
    std::vector<ConvBenchRecord> out;
    const int saved_threads = omp_get_max_threads();
    std::uint32_t seed = 1;
    for (const ConvLayerShape& layer : config.layers) {
        const precision::LayerPrecision dfp16 =
            hidden_layer_precision(config.precision, layer.name);
        for (int threads : config.threads) {
            omp_set_num_threads(threads);
            ConvBenchCase bc(layer, dfp16, seed);
            const PassSamples samples = time_passes(bc, config.repetitions, config.min_sample_s);
            // What the timed computation produced, each implementation against oneDNN FP32.
            const ConvOutputs fp32 = bc.outputs(ConvImpl::onednn_fp32);
            const ConvOutputs dfp = bc.outputs(ConvImpl::dfp16);
            const bool bf16 = bc.has_onednn_bf16();
            const ConvOutputs bf16_out = bf16 ? bc.outputs(ConvImpl::onednn_bf16) : ConvOutputs{};
            const ConvOutputs dfp8 = bc.outputs(ConvImpl::dfp8);
            for (ConvPass pass : kPasses) {
                auto median_ms = [&](ConvImpl impl) {
                    return median(samples[std::size_t(impl)][std::size_t(pass)]) * kMsPerS;
                };
                ConvBenchRecord rec;
                rec.layer = layer;
                rec.pass = pass;
                rec.threads = threads;
                rec.dfp16_ms = median_ms(ConvImpl::dfp16);
                rec.onednn_fp32_ms = median_ms(ConvImpl::onednn_fp32);
                if (bf16) rec.onednn_bf16_ms = median_ms(ConvImpl::onednn_bf16);
                rec.dfp8_ms = median_ms(ConvImpl::dfp8);
                if (pass == ConvPass::fprop) rec.onednn_s8_ms = median_ms(ConvImpl::onednn_s8);
                rec.dfp8_rel_error =
                    relative_error(pass_output(dfp8, pass), pass_output(fp32, pass));
                rec.dfp16_rel_error =
                    relative_error(pass_output(dfp, pass), pass_output(fp32, pass));
                if (bf16)
                    rec.onednn_bf16_rel_error =
                        relative_error(pass_output(bf16_out, pass), pass_output(fp32, pass));
                rec.gflop = bc.pass_flops() * kGigaPerUnit;
                rec.onednn_bf16_impls = bc.onednn_bf16_impls();
                out.push_back(rec);
                if (progress != nullptr) progress(rec);
            }
        }
        ++seed;
    }
    omp_set_num_threads(saved_threads);
    return out;
}

std::string conv_table_header() {
    // Both lines in the column widths of conv_table_row.
    static constexpr char kFormat[] =
        "%-16s %3s %7s %9s %6s %-6s %3s | %8s %8s %8s | %6s %6s | %8s %8s | %7s %7s %6s %6s | "
        "%8s\n";
    char names[320], units[320];
    std::snprintf(names, sizeof names, kFormat, "layer", "N", "HxW", "C->K", "RxS/s", "pass", "thr",
                  "dfp16", "fp32", "bf16", "x fp32", "x bf16", "dfp16", "bf16", "dfp8", "s8 dnnl",
                  "x fp32", "x s8", "dfp8");
    std::snprintf(units, sizeof units, kFormat, "", "", "", "", "", "", "", "ms", "ms", "ms", "",
                  "", "rel.err", "rel.err", "ms", "ms", "dfp8", "dfp8", "rel.err");
    return std::string(names) + units;
}

std::string conv_table_row(const ConvBenchRecord& r) {
    const ConvLayerShape& l = r.layer;
    const std::string hw = std::to_string(l.h) + "x" + std::to_string(l.w);
    const std::string ck = std::to_string(l.c) + "->" + std::to_string(l.k);
    const std::string kernel =
        std::to_string(l.kernel) + "x" + std::to_string(l.kernel) + "/" + std::to_string(l.stride);
    char line[320], s8_ms[16] = "-", s8_ratio[16] = "-";
    char bf16_ms[16] = "-", bf16_ratio[16] = "-", bf16_error[16] = "-";
    if (r.onednn_bf16_ms) {
        std::snprintf(bf16_ms, sizeof bf16_ms, "%.2f", *r.onednn_bf16_ms);
        std::snprintf(bf16_ratio, sizeof bf16_ratio, "%.2f", r.speedup_vs_onednn_bf16());
        std::snprintf(bf16_error, sizeof bf16_error, "%.1e", r.onednn_bf16_rel_error);
    }
    if (r.onednn_s8_ms) {
        std::snprintf(s8_ms, sizeof s8_ms, "%.2f", *r.onednn_s8_ms);
        std::snprintf(s8_ratio, sizeof s8_ratio, "%.2f", *r.onednn_s8_ms / r.dfp8_ms);
    }
    std::snprintf(
        line, sizeof line,
        "%-16s %3ld %7s %9s %6s %-6s %3d | %8.2f %8.2f %8s | %6.2f %6s | %8.1e %8s | %7.2f "
        "%7s %6.2f %6s | %8.1e\n",
        l.name.c_str(), long(l.n), hw.c_str(), ck.c_str(), kernel.c_str(), conv_pass_name(r.pass),
        r.threads, r.dfp16_ms, r.onednn_fp32_ms, bf16_ms, r.speedup_vs_onednn_fp32(), bf16_ratio,
        r.dfp16_rel_error, bf16_error, r.dfp8_ms, s8_ms, r.onednn_fp32_ms / r.dfp8_ms, s8_ratio,
        r.dfp8_rel_error);
    return line;
}

nlohmann::json conv_bench_json(const std::vector<ConvBenchRecord>& records, int repetitions) {
    nlohmann::json out = nlohmann::json::array();
    for (const ConvBenchRecord& r : records) {
        // null where this CPU has no oneDNN bf16 convolution (onednn_bf16_impls says why).
        const auto bf16 = [&r](auto value) {
            return r.onednn_bf16_ms ? nlohmann::json(value()) : nlohmann::json(nullptr);
        };
        out.push_back(
            {{"layer", r.layer.name},
             {"pass", conv_pass_name(r.pass)},
             {"threads", r.threads},
             {"dfp16_ms", r.dfp16_ms},
             {"onednn_fp32_ms", r.onednn_fp32_ms},
             {"onednn_bf16_ms", bf16([&] { return *r.onednn_bf16_ms; })},
             {"speedup_vs_onednn_fp32", r.speedup_vs_onednn_fp32()},
             {"speedup_vs_onednn_bf16", bf16([&] { return r.speedup_vs_onednn_bf16(); })},
             {"n", r.layer.n},
             {"h", r.layer.h},
             {"w", r.layer.w},
             {"c", r.layer.c},
             {"k", r.layer.k},
             {"kernel", r.layer.kernel},
             {"stride", r.layer.stride},
             {"pad", r.layer.pad},
             {"gflop", r.gflop},
             {"dfp16_rel_error_vs_fp32", r.dfp16_rel_error},
             {"onednn_bf16_rel_error_vs_fp32", bf16([&] { return r.onednn_bf16_rel_error; })},
             {"onednn_bf16_impls", r.onednn_bf16_impls},
             {"dfp8_ms", r.dfp8_ms},
             {"dfp8_speedup_vs_onednn_fp32", r.onednn_fp32_ms / r.dfp8_ms},
             {"dfp8_rel_error_vs_fp32", r.dfp8_rel_error},
             {"onednn_s8_ms",
              r.onednn_s8_ms ? nlohmann::json(*r.onednn_s8_ms) : nlohmann::json(nullptr)},
             {"repetitions", repetitions}});
    }
    return out;
}

}  // namespace dfp::bench
