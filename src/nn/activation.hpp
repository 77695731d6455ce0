// Element-wise layers: ReLU and Dropout. Any shape; dst has the shape of src.
#pragma once

#include <xmmintrin.h>

#include <cstdint>
#include <string>

#include "nn/layer.hpp"

namespace dfp::nn {

// dst, src are (n)
void relu_forward(float* dst, const float* src, std::int64_t n);
// Four lanes of relu_forward (NaN passes, -0 kept) and of relu_backward's mask (diff_dst where
// dst > 0, else 0), for the streaming passes of ReLU and of the residual join.
inline __m128 relu4(__m128 x) {
    return _mm_and_ps(x, _mm_cmpnlt_ps(x, _mm_setzero_ps()));
}
inline __m128 relu_grad4(__m128 diff_dst, __m128 dst) {
    return _mm_and_ps(diff_dst, _mm_cmpgt_ps(dst, _mm_setzero_ps()));
}
// diff_src += diff_dst where dst > 0 (with add false: diff_src = that, 0 elsewhere). diff_src, dst,
// diff_dst are (n)
void relu_backward(float* diff_src, const float* dst, const float* diff_dst, std::int64_t n,
                   bool add = true);

// Inverted dropout: element i is kept when its random bits, from the counter-based RNG at
// (seed, key), are >= p * 2^32, and scaled by 1 / (1 - p). The mask is never stored: backward
// regenerates it from the same key. dst, src are (n), n < 2^32.
void dropout_forward(float* dst, const float* src, std::int64_t n, float p, std::uint64_t seed,
                     std::uint32_t key);
// diff_src += mask * diff_dst / (1 - p). diff_src, diff_dst are (n)
void dropout_backward(float* diff_src, const float* diff_dst, std::int64_t n, float p,
                      std::uint64_t seed, std::uint32_t key);

class Relu : public Layer {
  public:
    explicit Relu(std::string name) : Layer(std::move(name)) {}
    const char* kind() const override { return "relu"; }
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;
};

// Train mode drops with probability p, keyed by the layer name and the low 32 bits of
// ctx.iteration; eval mode is the identity.
class Dropout : public Layer {
  public:
    Dropout(std::string name, float p);
    const char* kind() const override { return "dropout"; }
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;

  private:
    float p_;
    std::uint64_t seed_;
    Mode mode_ = Mode::train;  // of the last forward
    std::uint32_t key_ = 0;    // of the last forward
};

}  // namespace dfp::nn
