// Scalar reference kernels: the definition every vector kernel is tested against.
#include <bit>
#include <cmath>

#include "format/quantize_kernels.hpp"
#include "format/rounding.hpp"

namespace dfp {
namespace {

std::uint32_t max_abs_bits(const float* src, std::size_t n) {
    std::uint32_t m = 0;
    for (std::size_t i = 0; i < n; ++i)
        m = std::max(m, std::bit_cast<std::uint32_t>(src[i]) & 0x7fffffffu);
    return m;
}

// src[i], or +0 where a keep mask drops it (relu_backward's select).
float kept(const float* src, const float* keep, std::size_t i) {
    return keep == nullptr || keep[i] > 0.0f ? src[i] : 0.0f;
}

std::uint32_t max_abs_bits_kept(const float* src, const float* keep, std::size_t n) {
    std::uint32_t m = 0;
    for (std::size_t i = 0; i < n; ++i)
        m = std::max(m, std::bit_cast<std::uint32_t>(kept(src, keep, i)) & 0x7fffffffu);
    return m;
}

template <class M>
std::uint32_t quantize(const float* src, M* dst, std::size_t n, const QuantizeRun& r) {
    const std::uint32_t max_bits = max_abs_bits_kept(src, r.keep, n);
    if (max_bits >= kNonFiniteBits) return max_bits;  // a NaN would not convert to int
    for (std::size_t i = 0; i < n; ++i) {
        const float x = kept(src, r.keep, i);
        const float y = std::fabs(x) * r.scale.first * r.scale.second;
        const std::uint32_t rand =
            r.rounding == Rounding::stochastic ? random_bits(r.seed, r.index0 + i) : 0;
        const auto m =
            static_cast<int>(std::min(round_scaled(y, r.rounding, rand), r.max_mantissa));
        dst[i] = static_cast<M>(std::signbit(x) ? -m : m);
    }
    return max_bits;
}

template <class M>
void dequantize(const M* src, float* dst, std::size_t n, Pow2 scale) {
    for (std::size_t i = 0; i < n; ++i)
        dst[i] = static_cast<float>(src[i]) * scale.first * scale.second;
}

}  // namespace

Pow2 pow2(int k) {
    if (k > 127) return {std::ldexp(1.0f, 127), std::ldexp(1.0f, k - 127)};
    if (k < -126) return {std::ldexp(1.0f, k + 126), std::ldexp(1.0f, -126)};
    // A normal power of two is its exponent field alone (called per block: ldexp was a tenth of
    // block quantization).
    return {std::bit_cast<float>(static_cast<std::uint32_t>(k + 127) << 23), 1.0f};
}

const QuantizeKernels& scalar_quantize_kernels() {
    static const QuantizeKernels k{"scalar",
                                   max_abs_bits,
                                   max_abs_bits_kept,
                                   quantize<std::int16_t>,
                                   quantize<std::int8_t>,
                                   dequantize<std::int16_t>,
                                   dequantize<std::int8_t>};
    return k;
}

const QuantizeKernels& quantize_kernels(Isa isa) {
    return isa >= Isa::avx512 ? avx512_quantize_kernels() : scalar_quantize_kernels();
}

}  // namespace dfp
