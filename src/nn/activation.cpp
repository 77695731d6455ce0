#include "nn/activation.hpp"

#include <xmmintrin.h>

#include <cmath>

#include "format/rng.hpp"

namespace dfp::nn {

namespace {

// The smallest 32-bit value a kept element's random bits reach: p * 2^32, rounded up.
std::uint64_t keep_threshold(float p) {
    return static_cast<std::uint64_t>(std::ceil(static_cast<double>(p) * 4294967296.0));
}

}  // namespace

void relu_forward(float* dst, const float* src, std::int64_t n) {
    // NaN passes through (NaN < 0 is false), so the NaN check names the layer that made it.
    if (dst != src && streamable(n, {dst})) {
        stream_blocks(n, [&](std::int64_t q) {
            _mm_stream_ps(dst + 4 * q, relu4(_mm_loadu_ps(src + 4 * q)));
        });
        const std::int64_t done = n / 4 * 4;
        dst += done, src += done, n -= done;
    }
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i] < 0.0f ? 0.0f : src[i];
}

void relu_backward(float* diff_src, const float* dst, const float* diff_dst, std::int64_t n,
                   bool add) {
    // diff_dst is loaded unconditionally so that the mask is a select: GCC compiles a conditional
    // load to a branch, which mispredicts on about half the elements and ran 5x slower.
    if (add) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
        for (std::int64_t i = 0; i < n; ++i) {
            const float dy = diff_dst[i];
            diff_src[i] += dst[i] > 0.0f ? dy : 0.0f;
        }
    } else {
        if (streamable(n, {diff_src})) {
            stream_blocks(n, [&](std::int64_t q) {
                _mm_stream_ps(diff_src + 4 * q, relu_grad4(_mm_loadu_ps(diff_dst + 4 * q),
                                                           _mm_loadu_ps(dst + 4 * q)));
            });
            const std::int64_t done = n / 4 * 4;
            diff_src += done, dst += done, diff_dst += done, n -= done;
        }
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
        for (std::int64_t i = 0; i < n; ++i) {
            const float dy = diff_dst[i];
            diff_src[i] = dst[i] > 0.0f ? dy : 0.0f;
        }
    }
}

void dropout_forward(float* dst, const float* src, std::int64_t n, float p, std::uint64_t seed,
                     std::uint32_t key) {
    const std::uint64_t threshold = keep_threshold(p);
    const std::uint32_t rng = rng_key(seed, key);
    const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i)
        dst[i] = random_bits_keyed(rng, static_cast<std::uint32_t>(i)) >= threshold ? src[i] * scale
                                                                                    : 0.0f;
}

void dropout_backward(float* diff_src, const float* diff_dst, std::int64_t n, float p,
                      std::uint64_t seed, std::uint32_t key) {
    const std::uint64_t threshold = keep_threshold(p);
    const std::uint32_t rng = rng_key(seed, key);
    const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i)
        if (random_bits_keyed(rng, static_cast<std::uint32_t>(i)) >= threshold)
            diff_src[i] += diff_dst[i] * scale;
}

void Relu::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    expect_srcs(src, 1);
    dst.resize(src[0]->shape);
    relu_forward(dst.data.data(), src[0]->data.data(), std::int64_t(dst.numel()));
}

void Relu::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

void Relu::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                         Overwrite overwrite) {
    expect_srcs(src, 1);
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (!diff_src[0]) return;
    relu_backward(diff_src[0]->data.data(), dst.data.data(), diff_dst.data.data(),
                  std::int64_t(dst.numel()), !overwrite[0]);
}

Dropout::Dropout(std::string name, float p)
    : Layer(std::move(name)), p_(p), seed_(name_seed(this->name())) {
    if (!(p >= 0.0f && p < 1.0f)) fail("needs 0 <= p < 1, got " + std::to_string(p));
}

void Dropout::forward(Srcs src, Tensor& dst, const Context& ctx) {
    expect_srcs(src, 1);
    constexpr std::size_t kMaxElements = std::size_t{1} << 32;  // the RNG counter's low half
    if (src[0]->numel() >= kMaxElements)
        fail("input " + shape_string(src[0]->shape) + " has 2^32 or more elements");
    mode_ = ctx.mode;
    key_ = static_cast<std::uint32_t>(ctx.iteration);
    dst.resize(src[0]->shape);
    const std::int64_t n = std::int64_t(dst.numel());
    if (mode_ == Mode::eval)
        dst.data = src[0]->data;
    else
        dropout_forward(dst.data.data(), src[0]->data.data(), n, p_, seed_, key_);
}

void Dropout::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    expect_srcs(src, 1);
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (!diff_src[0]) return;
    const std::int64_t n = std::int64_t(dst.numel());
    if (mode_ == Mode::eval)
        accumulate(diff_src[0]->data.data(), diff_dst.data.data(), n);
    else
        dropout_backward(diff_src[0]->data.data(), diff_dst.data.data(), n, p_, seed_, key_);
}

}  // namespace dfp::nn
