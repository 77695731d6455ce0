#include "nn/linear.hpp"

#include <dnnl.hpp>

#include "base/error.hpp"

namespace dfp::nn {

namespace {

using kernels::Op;

Shape linear_weight_shape(const std::string& name, const LinearConfig& config) {
    if (config.in_features < 1 || config.out_features < 1)
        throw Error("linear '" + name + "': needs in_features, out_features >= 1, got " +
                    std::to_string(config.in_features) + ", " +
                    std::to_string(config.out_features));
    return {std::size_t(config.out_features), std::size_t(config.in_features)};
}

// Row-major C (m, n) = alpha op(A) op(B) + beta C on oneDNN's sgemm.
void sgemm(char transa, char transb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
    const dnnl::status status =
        dnnl::sgemm(transa, transb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    if (status != dnnl::status::success)
        throw Error("linear: oneDNN sgemm failed for m=" + std::to_string(m) +
                    " n=" + std::to_string(n) + " k=" + std::to_string(k));
}

}  // namespace

Linear::Linear(std::string name, const LinearConfig& config)
    : Layer(std::move(name)),
      config_(config),
      weight_(this->name() + ".weight", linear_weight_shape(this->name(), config)),
      q16_{{this->name() + ".src"}, {this->name() + ".weight"}, {this->name() + ".diff_dst"}},
      q8_{{this->name() + ".src"}, {this->name() + ".weight"}, {this->name() + ".diff_dst"}},
      weight_t_q_{this->name() + ".weight.transposed"},
      diff_dst_t_q_{this->name() + ".diff_dst.transposed"},
      src_t_q_{this->name() + ".src.transposed"} {
    init_he_uniform(weight_, config.in_features);
    if (config.bias) bias_.emplace(this->name() + ".bias", Shape{std::size_t(config.out_features)});
}

std::vector<Param*> Linear::params() {
    if (bias_) return {&weight_, &*bias_};
    return {&weight_};
}

std::int64_t Linear::batch(const Tensor& src) const {
    if (src.shape.size() < 2 || src.numel() == 0 ||
        static_cast<std::int64_t>(src.numel() / src.shape[0]) != config_.in_features)
        fail("expects {N, ...} with " + std::to_string(config_.in_features) +
             " features per sample, got shape " + shape_string(src.shape));
    return static_cast<std::int64_t>(src.shape[0]);
}

void Linear::forward(Srcs src, Tensor& dst, const Context& ctx) {
    expect_srcs(src, 1);
    iteration_ = ctx.iteration;
    const std::int64_t n = batch(*src[0]), in = config_.in_features, out = config_.out_features;
    dst.resize({std::size_t(n), std::size_t(out)});
    const precision::LayerPrecision& prec = config_.precision;
    switch (prec.compute) {
        case precision::Compute::fp32: {
            // dst^T (out, N) = W src^T, then transposed: sgemm computing dst = src W^T directly
            // ran 3-5x slower at small batches (AlexNet's fc6, N = 32: 30.5 against 6.8 ms, 2
            // threads), and never faster (N = 256: 63 against 52 ms).
            dst_t_.resize(std::size_t(out * n));
            sgemm('N', 'T', out, n, in, weight_.value.data(), in, src[0]->data.data(), in, 0.0f,
                  dst_t_.data(), n);
            float* y = dst.data.data();
            for (std::int64_t o = 0; o < out; ++o)
                for (std::int64_t i = 0; i < n; ++i)
                    y[i * out + o] = dst_t_[std::size_t(o * n + i)];
            if (bias_) add_bias(y, bias_->value.data(), n, out);
            break;
        }
        case precision::Compute::dfp16:
            forward_dfp(*src[0], dst, n, q16_);
            break;
        case precision::Compute::dfp8:
            forward_dfp(*src[0], dst, n, q8_);
            break;
    }
}

template <class M>
void Linear::forward_dfp(const Tensor& src, Tensor& dst, std::int64_t n, Quantized<M>& q) {
    const precision::LayerPrecision& prec = config_.precision;
    const std::int64_t in = config_.in_features, out = config_.out_features;
    // The weights are quantized from the FP32 master on every forward: SGD updates the master
    // between iterations.
    q.src.quantize(src.data.data(), n, in, prec.activations, iteration_);
    q.weight.quantize(weight_.value.data(), out, in, prec.weights, iteration_);
    dfp_gemm<M>(*this, "fprop", q.src, Op::n, q.weight, Op::t, dst.data.data(), false,
                bias_ ? bias_->value.data() : nullptr);
}

template <class M>
void Linear::backward_dfp(const Tensor& diff_dst, Tensor* diff_src, std::int64_t n,
                          Quantized<M>& q) {
    const std::int64_t in = config_.in_features, out = config_.out_features;
    if (q.src.q.shape != Shape{std::size_t(n), std::size_t(in)})
        fail(std::string(precision::compute_name(config_.precision.compute)) +
             " backward without a forward in that precision on this input");
    q.diff_dst.quantize(diff_dst.data.data(), n, out, config_.precision.gradients, iteration_);
    if (diff_src)  // BPROP: diff_src (N, I) += diff_dst (N, O) wei (O, I)
        dfp_gemm<M>(*this, "bprop", q.diff_dst, Op::n, q.weight, Op::n, diff_src->data.data(),
                    true);
    // WTGRAD: wei.grad (O, I) += diff_dst^T (O, N) src (N, I), src as forward quantized it.
    dfp_gemm<M>(*this, "wtgrad", q.diff_dst, Op::t, q.src, Op::n, weight_.grad.data(),
                weight_.begin_grad());
}

// Forward is forward_dfp's (src and weights have their blocks along I, the reduction); backward
// quantizes each operand along its own reduction: O for BPROP, N for WTGRAD.
void Linear::backward_block_scaled(const Tensor& src, const Tensor& diff_dst, Tensor* diff_src,
                                   std::int64_t n) {
    const precision::LayerPrecision& prec = config_.precision;
    const std::int64_t in = config_.in_features, out = config_.out_features;
    if (diff_src) {  // BPROP: diff_src (N, I) += diff_dst (N, O) wei (O, I)
        q8_.diff_dst.quantize(diff_dst.data.data(), n, out, prec.gradients, iteration_);
        weight_t_q_.quantize_transposed(weight_.value.data(), out, in, prec.weights, iteration_);
        dfp_gemm<std::int8_t>(*this, "bprop", q8_.diff_dst, Op::n, weight_t_q_, Op::t,
                              diff_src->data.data(), true);
    }
    // WTGRAD: wei.grad (O, I) += diff_dst^T (O, N) src (N, I)
    diff_dst_t_q_.quantize_transposed(diff_dst.data.data(), n, out, prec.gradients, iteration_);
    src_t_q_.quantize_transposed(src.data.data(), n, in, prec.activations, iteration_);
    dfp_gemm<std::int8_t>(*this, "wtgrad", diff_dst_t_q_, Op::n, src_t_q_, Op::t,
                          weight_.grad.data(), weight_.begin_grad());
}

void Linear::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    expect_srcs(src, 1);
    const std::int64_t n = batch(*src[0]), in = config_.in_features, out = config_.out_features;
    expect_shape(diff_dst, dst.shape, "diff_dst");
    const float* dd = diff_dst.data.data();
    const precision::LayerPrecision& prec = config_.precision;
    switch (prec.compute) {
        case precision::Compute::fp32:
            // beta = 1: sgemm adds into the gradients, as backward's contract asks (beta = 0 stores
            // a weight gradient that Net::zero_grad cleared).
            if (diff_src[0])
                sgemm('N', 'N', n, in, out, dd, out, weight_.value.data(), in, 1.0f,
                      diff_src[0]->data.data(), in);
            sgemm('T', 'N', out, in, n, dd, out, src[0]->data.data(), in,
                  weight_.begin_grad() ? 1.0f : 0.0f, weight_.grad.data(), in);
            break;
        case precision::Compute::dfp16:
            backward_dfp(diff_dst, diff_src[0], n, q16_);
            break;
        case precision::Compute::dfp8:
            if (block_scaled(prec))
                backward_block_scaled(*src[0], diff_dst, diff_src[0], n);
            else
                backward_dfp(diff_dst, diff_src[0], n, q8_);
            break;
    }
    if (bias_) add_column_sums(bias_->settle_grad().data(), dd, n, out);
}

}  // namespace dfp::nn
