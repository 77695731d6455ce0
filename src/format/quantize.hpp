// FP32 <-> DFP conversion of whole tensors: per block, the exponent from the block's largest
// magnitude (format.hpp), then rounding and clamping of every element. Multi-threaded over
// runs (OpenMP); the result does not depend on the thread count.
#pragma once

#include <string_view>
#include <vector>

#include "base/isa.hpp"
#include "format/dfp_tensor.hpp"

namespace dfp {

// Quantizes `src` (shape_numel(shape) floats) into `dst`, reusing its buffers. `name` names the
// tensor in errors: a NaN or Inf in src throws dfp::Error with the name and element index, and
// leaves dst unspecified. M is int16_t (bits <= 16) or int8_t (bits <= 8). With `keep` (as many
// floats, or null), src[i] counts as 0 wherever !(keep[i] > 0): the gradient through a fused
// ReLU whose output is keep, quantized as if relu_backward had masked it first.
template <class M>
void quantize_into(const float* src, const Shape& shape, const Format& format,
                   const QuantizeOptions& options, std::string_view name, DfpTensor<M>& dst,
                   Isa isa = active_isa(), const float* keep = nullptr);

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
