#include "nn/join.hpp"

#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "nn/activation.hpp"

namespace dfp::nn {

void Add::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    expect_srcs(src, -2);
    for (const Tensor* s : src) expect_shape(*s, src[0]->shape, "an input");
    dst.resize(src[0]->shape);
    float* y = dst.data.data();
    std::int64_t n = std::int64_t(dst.numel());
    if (src.size() == 2) {  // the residual join: one pass, the ReLU included
        const float* a = src[0]->data.data();
        const float* b = src[1]->data.data();
        std::int64_t done = 0;  // elements written by the streaming pass
        if (streamable(n, {y})) {
            stream_blocks(n, [&](std::int64_t q) {
                const __m128 sum = _mm_add_ps(_mm_loadu_ps(a + 4 * q), _mm_loadu_ps(b + 4 * q));
                _mm_stream_ps(y + 4 * q, relu_ ? relu4(sum) : sum);
            });
            done = n / 4 * 4;
        }
        a += done, b += done, y += done, n -= done;
        if (relu_)
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
            for (std::int64_t i = 0; i < n; ++i) {
                const float sum = a[i] + b[i];
                y[i] = sum < 0.0f ? 0.0f : sum;  // NaN passes, as relu_forward
            }
        else
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
            for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
        return;
    }
    std::copy(src[0]->data.begin(), src[0]->data.end(), dst.data.begin());
    for (std::size_t i = 1; i < src.size(); ++i) accumulate(y, src[i]->data.data(), n);
    if (relu_) relu_forward(y, y, n);
}

void Add::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

namespace {
// The residual join's backward in one pass: g = diff_dst (masked by dst > 0 after a fused ReLU)
// written to or added onto both gradients, so diff_dst and dst are read once, not once per input.
template <bool kRelu, bool kAdd0, bool kAdd1>
void add_backward2(float* d0, float* d1, const float* y, const float* dy, std::int64_t n) {
    if (!kAdd0 && !kAdd1 && streamable(n, {d0, d1})) {  // both written: streamed
        stream_blocks(n, [&](std::int64_t q) {
            __m128 g = _mm_loadu_ps(dy + 4 * q);
            if constexpr (kRelu) g = relu_grad4(g, _mm_loadu_ps(y + 4 * q));
            _mm_stream_ps(d0 + 4 * q, g);
            _mm_stream_ps(d1 + 4 * q, g);
        });
        const std::int64_t done = n / 4 * 4;
        d0 += done, d1 += done, y += done, dy += done, n -= done;
    }
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i) {
        const float v = dy[i];  // loaded unconditionally: a select, not a branch (relu_backward)
        const float g = kRelu ? (y[i] > 0.0f ? v : 0.0f) : v;
        d0[i] = kAdd0 ? d0[i] + g : g;
        d1[i] = kAdd1 ? d1[i] + g : g;
    }
}
}  // namespace

void Add::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                        Overwrite overwrite) {
    expect_srcs(src, -2);
    expect_shape(diff_dst, dst.shape, "diff_dst");
    const std::int64_t n = std::int64_t(diff_dst.numel());
    const float* dd = diff_dst.data.data();
    const float* y = dst.data.data();
    if (diff_src.size() == 2 && diff_src[0] && diff_src[1] && diff_src[0] != diff_src[1]) {
        const auto run = [&](auto relu, auto add0, auto add1) {
            add_backward2<relu(), add0(), add1()>(diff_src[0]->data.data(),
                                                  diff_src[1]->data.data(), y, dd, n);
        };
        using T = std::true_type;
        using F = std::false_type;
        const bool a0 = !overwrite[0], a1 = !overwrite[1];
        if (relu_) {
            if (a0) a1 ? run(T{}, T{}, T{}) : run(T{}, T{}, F{});
            else a1 ? run(T{}, F{}, T{}) : run(T{}, F{}, F{});
        } else {
            if (a0) a1 ? run(F{}, T{}, T{}) : run(F{}, T{}, F{});
            else a1 ? run(F{}, F{}, T{}) : run(F{}, F{}, F{});
        }
        return;
    }
    for (std::size_t i = 0; i < diff_src.size(); ++i) {
        Tensor* ds = diff_src[i];
        if (!ds) continue;
        if (relu_)  // relu_backward's mask, applied on the fly
            relu_backward(ds->data.data(), y, dd, n, !overwrite[i]);
        else if (overwrite[i])
            std::copy_n(dd, n, ds->data.data());
        else
            accumulate(ds->data.data(), dd, n);
    }
}

Shape Concat::joined_shape(Srcs src) const {
    expect_srcs(src, -1);
    Shape shape = src[0]->shape;
    if (shape.empty()) fail("inputs need at least one dimension");
    shape.back() = 0;
    for (const Tensor* s : src) {
        const bool fits = s->shape.size() == shape.size() &&
                          std::equal(shape.begin(), shape.end() - 1, s->shape.begin());
        if (!fits)
            fail("input " + shape_string(s->shape) + " does not match " +
                 shape_string(src[0]->shape) + " outside the last axis");
        shape.back() += s->shape.back();
    }
    return shape;
}

void Concat::forward(Srcs src, Tensor& dst, const Context& /*ctx*/) {
    dst.resize(joined_shape(src));
    const std::int64_t c_dst = std::int64_t(dst.shape.back());
    if (c_dst == 0) return;
    const std::int64_t rows = std::int64_t(dst.numel()) / c_dst;
    float* y = dst.data.data();
#pragma omp parallel for schedule(static) if (rows * c_dst >= kMinParallelElements)
    for (std::int64_t r = 0; r < rows; ++r) {
        std::int64_t offset = 0;
        for (const Tensor* s : src) {
            const std::int64_t c = std::int64_t(s->shape.back());
            std::copy_n(s->data.data() + r * c, c, y + r * c_dst + offset);
            offset += c;
        }
    }
}

void Concat::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

void Concat::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                           Overwrite overwrite) {
    expect_shape(dst, joined_shape(src), "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    const std::int64_t c_dst = std::int64_t(dst.shape.back());
    if (c_dst == 0) return;
    const std::int64_t rows = std::int64_t(dst.numel()) / c_dst;
    const float* dy = diff_dst.data.data();
#pragma omp parallel for schedule(static) if (rows * c_dst >= kMinParallelElements)
    for (std::int64_t r = 0; r < rows; ++r) {
        std::int64_t offset = 0;
        for (std::size_t i = 0; i < src.size(); ++i) {
            const std::int64_t c = std::int64_t(src[i]->shape.back());
            if (diff_src[i]) {
                float* dx = diff_src[i]->data.data() + r * c;
                const float* from = dy + r * c_dst + offset;
                if (overwrite[i])
                    std::copy_n(from, c, dx);
                else
                    for (std::int64_t ch = 0; ch < c; ++ch) dx[ch] += from[ch];
            }
            offset += c;
        }
    }
}

}  // namespace dfp::nn
