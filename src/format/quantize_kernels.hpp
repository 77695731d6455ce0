// The per-run kernels of FP32 <-> DFP conversion. One table per ISA; the scalar table is the
// reference that defines the results, and every other table must match it bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/isa.hpp"
#include "format/format.hpp"

namespace dfp {

// Multiplying by 2^k as two exact factors: a single FP32 power of two covers only
// 2^-126..2^127, while DFP scales reach 2^-163..2^163 (subnormal data). (x * first) * second
// is the correctly rounded x * 2^k whenever x * first stays normal, which the callers ensure.
struct Pow2 {
    float first, second;
};
Pow2 pow2(int k);

// Marks a non-finite value: max_abs_bits() returns the largest |x| as its IEEE bit pattern
// (for non-negative floats integer order is value order), and every NaN or Inf is above this.
constexpr std::uint32_t kNonFiniteBits = 0x7f800000u;

struct QuantizeRun {
    Pow2 scale;          // 2^-E_s
    float max_mantissa;  // clamp bound, 2^(b-1) - 1
    Rounding rounding;
    std::uint64_t seed;    // stochastic rounding
    std::uint64_t index0;  // element index of src[0] in the tensor (the RNG counter)
    // A hint: dst is part of a tensor larger than the caches, so vector kernels write it with
    // non-temporal stores (no read of the lines they overwrite). The mantissas are the same.
    bool stream = false;
    // Or null. src[i] counts as +0 wherever !(keep[i] > 0), in the mantissas and the returned
    // maximum: the gradient through a fused ReLU whose output is keep (relu_backward's mask),
    // quantized without a pass of its own. keep is indexed as src.
    const float* keep = nullptr;
};

struct QuantizeKernels {
    const char* name;
    std::uint32_t (*max_abs_bits)(const float* src, std::size_t n);
    // The same of src masked by keep (QuantizeRun::keep, not null).
    std::uint32_t (*max_abs_bits_kept)(const float* src, const float* keep, std::size_t n);
    // dst[i] = sign(src[i]) * min(round(|src[i]| * 2^-E_s), max_mantissa), and returns
    // max_abs_bits(src, n) from the same reads (quantizing with a guessed exponent then needs one
    // pass over src). When that is >= kNonFiniteBits, dst is unspecified.
    std::uint32_t (*quantize_s16)(const float* src, std::int16_t* dst, std::size_t n,
                                  const QuantizeRun& r);
    std::uint32_t (*quantize_s8)(const float* src, std::int8_t* dst, std::size_t n,
                                 const QuantizeRun& r);
    // dst[i] = src[i] * 2^E_s
    void (*dequantize_s16)(const std::int16_t* src, float* dst, std::size_t n, Pow2 scale);
    void (*dequantize_s8)(const std::int8_t* src, float* dst, std::size_t n, Pow2 scale);
};

const QuantizeKernels& scalar_quantize_kernels();
const QuantizeKernels& avx512_quantize_kernels();  // needs Isa::avx512
// The best table for `isa`.
const QuantizeKernels& quantize_kernels(Isa isa);

}  // namespace dfp
