// The Dynamic Fixed Point format: b-bit integer mantissas sharing one power-of-two exponent per
// block of elements (the whole tensor, one slice along an axis, or fixed-size blocks).
//
//   value[i] = mantissa[i] * 2^exponent[block(i)],   |mantissa| <= 2^(b-1) - 1
//
// Exponent rule (Das et al. 2018; PAPERS.md section 1), per block:
//   E_fmax = floor(log2(max |x|)),   E_s = E_fmax - (b - 2) + shift
// so that with shift = 0 the largest magnitude lands in [2^(b-2), 2^(b-1)). Rounding can push it
// to 2^(b-1); the mantissa is then clamped symmetrically to +-(2^(b-1) - 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dfp {

using Shape = std::vector<std::size_t>;
std::size_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);

enum class Granularity {
    tensor,  // one exponent for the whole tensor (the paper's choice)
    axis,    // one exponent per index along `axis` (e.g. per output channel)
    block,   // blocks of `block` consecutive elements along the last axis (MX style: 32); the
             // last block of each row is shorter when the row length is not a multiple
};

struct Format {
    int bits = 16;  // mantissa bits including the sign, 2..16
    Granularity granularity = Granularity::tensor;
    int axis = 0;    // Granularity::axis only
    int block = 32;  // Granularity::block only

    int max_mantissa() const { return (1 << (bits - 1)) - 1; }
    // Throws dfp::Error naming `what` when bits, axis or block are out of range for `shape`.
    void validate(const Shape& shape, std::string_view what) const;
    // "dfp16", "dfp8/axis0", "dfp8/block32"
    std::string name() const;
};

Format dfp16_tensor();
Format dfp8_tensor();

// How the scaled magnitude |x| * 2^-E_s becomes an integer. Every mode rounds the magnitude and
// then applies the sign, so that positive and negative values round symmetrically.
enum class Rounding {
    nearest_even,       // to nearest, ties to even (the paper's FP path)
    nearest_away,       // to nearest, ties away from zero (the paper's integer code)
    truncate,           // toward zero: drop the discarded bits
    biased,             // up when either of the two highest discarded bits is set (>= 1/4 step)
    stochastic,         // up with probability equal to the discarded fraction (counter-based RNG)
    pseudo_stochastic,  // NITI: up iff the high half of the discarded bits exceeds the low half
};

struct QuantizeOptions {
    Rounding rounding = Rounding::nearest_even;
    int shift = 0;           // extra headroom s, 0..bits-2 (the paper's code uses 2 for DFP16)
    std::uint64_t seed = 0;  // stochastic rounding: result depends on (seed, element index) only
    // A guess of the exponent of a one-exponent tensor (granularity tensor), e.g. the one the
    // same tensor got last step. When right, quantization reads src once instead of twice (each
    // run's maximum, then its rounding while the run is in cache); when wrong it rounds again
    // with the right one. The result never depends on it. Ignored by other granularities.
    std::optional<int> expected_exponent = {};
};

const char* rounding_name(Rounding r);
// Throws dfp::Error naming `what` on an unknown name.
Rounding parse_rounding(std::string_view name, std::string_view what);

// The range of shared exponents the rule can produce for a finite FP32 input (the largest
// magnitude is below 2^128, the smallest subnormal is 2^-149) with 0 <= shift <= bits - 2.
constexpr int kMinExponent = -149 - 14;  // smallest subnormal, b = 16, shift = 0
constexpr int kMaxExponent = 127;        // largest finite, any b, shift <= b - 2

// Shared exponent for a block whose largest magnitude is `max_abs` (finite, >= 0). An all-zero
// block gets exponent 0 (its mantissas are all zero, so any exponent represents it exactly).
int shared_exponent(float max_abs, int bits, int shift);

}  // namespace dfp
