// FP32 <-> DFP conversion of whole tensors: per block, the exponent from the block's largest
// magnitude (format.hpp), then rounding and clamping of every element. Multi-threaded over
// runs (OpenMP); the result does not depend on the thread count.
#pragma once

#include <atomic>
#include <optional>
#include <string_view>
#include <vector>

#include "base/isa.hpp"
#include "format/dfp_tensor.hpp"

namespace dfp {

struct QuantizeKernels;

// Quantizes `src` (shape_numel(shape) floats) into `dst`, reusing its buffers. `name` names the
// tensor in errors: a NaN or Inf in src throws dfp::Error with the name and element index, and
// leaves dst unspecified. M is int16_t (bits <= 16) or int8_t (bits <= 8). With `keep` (as many
// floats, or null), src[i] counts as 0 wherever !(keep[i] > 0): the gradient through a fused
// ReLU whose output is keep, quantized as if relu_backward had masked it first.
template <class M>
void quantize_into(const float* src, const Shape& shape, const Format& format,
                   const QuantizeOptions& options, std::string_view name, DfpTensor<M>& dst,
                   Isa isa = active_isa(), const float* keep = nullptr);

// options.expected_exponent where quantize_into and PartwiseQuantizer can use it: one exponent per
// tensor, and within the range of exponents (kMinExponent..kMaxExponent); otherwise none.
std::optional<int> usable_guess(const Format& format, const QuantizeOptions& options);

// Quantizing a one-exponent tensor part by part while its producer writes it (a layer's output
// pass), each part while it is still in cache: this saves quantize_into's read of the whole tensor
// from memory. The parts are rounded with options.expected_exponent (the exponent the tensor had
// last step: activations change little from step to step). finish() then tells whether the
// largest magnitude of all the parts gives that exponent: if so dst holds exactly what
// quantize_into(src, shape, format, options, ...) makes of the tensor; if not (a new range, or a
// NaN or Inf), dst's mantissas are unspecified and the caller quantizes the tensor as usual.
template <class M>
class PartwiseQuantizer {
  public:
    // Throws dfp::Error as quantize_into does for a format or shift that does not fit M, and for a
    // granularity other than per tensor or no expected exponent. dst's buffers are reused.
    PartwiseQuantizer(const Shape& shape, const Format& format, const QuantizeOptions& options,
                      std::string_view name, DfpTensor<M>& dst, Isa isa = active_isa());
    // Quantizes elements [offset, offset + count) of the tensor; src points at element offset.
    // Thread-safe for disjoint parts.
    void part(const float* src, std::size_t offset, std::size_t count);
    // After every element's part: whether dst is complete (the expected exponent held). dst's
    // exponent is then the one of the parts' largest magnitude, when that is finite: the next
    // quantize_into of dst with it as the expected exponent reads src once.
    bool finish();

  private:
    const QuantizeKernels& kernels_;
    DfpTensor<M>& dst_;
    QuantizeOptions options_;
    int exponent_;
    bool stream_;
    std::atomic<std::uint32_t> max_bits_{0};
};

template <class M>
DfpTensor<M> quantize(const float* src, const Shape& shape, const Format& format,
                      const QuantizeOptions& options, std::string_view name,
                      Isa isa = active_isa()) {
    DfpTensor<M> dst;
    quantize_into(src, shape, format, options, name, dst, isa);
    return dst;
}

// dst[i] = mantissa[i] * 2^exponent[block(i)], correctly rounded to FP32 (exact for int8 and
// int16 mantissas unless the value is below the FP32 subnormal range).
template <class M>
void dequantize(const DfpTensor<M>& src, float* dst, Isa isa = active_isa());

template <class M>
std::vector<float> dequantize(const DfpTensor<M>& src, Isa isa = active_isa()) {
    std::vector<float> dst(src.mantissas.size());
    dequantize(src, dst.data(), isa);
    return dst;
}

// How well a DFP tensor represents the FP32 data it was quantized from.
struct QuantizeError {
    double signal_energy = 0;  // sum x^2
    double noise_energy = 0;   // sum (x - q)^2
    std::size_t count = 0;
    std::size_t flushed = 0;        // x != 0 but q == 0
    std::size_t clamped = 0;        // |x| beyond the largest mantissa: max_mantissa * 2^E
    double relative_error() const;  // ||x - q|| / ||x||
    double sqnr_db() const;         // 10 log10(signal / noise); +inf when exact
};

template <class M>
QuantizeError measure_error(const float* src, const DfpTensor<M>& q);

}  // namespace dfp
