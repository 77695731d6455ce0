// Rounding of one magnitude, in the two forms the library needs:
//  - round_scaled: an FP32 magnitude y = |x| * 2^-E_s (>= 0) to an integer-valued float;
//  - round_shift:  an integer magnitude v shifted right by k bits (INT32 -> narrower DFP).
// These scalar functions define each mode; the vector kernels must agree with them bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "format/format.hpp"
#include "format/rng.hpp"

namespace dfp {

// Stochastic rounding from FP32 compares the discarded fraction with 24 random bits, so the
// probability of rounding up is the fraction rounded up to a multiple of 2^-24.
constexpr int kStochasticBits = 24;
// Pseudo-stochastic rounding from FP32 reads the fraction as 24 discarded bits: the top 12 are
// the probability, the low 12 the random number (NITI's split with k = 24).
constexpr int kPseudoFractionBits = 24;

// y >= 0 and finite. `rand` is random_bits(seed, index) (used by Rounding::stochastic only).
inline float round_scaled(float y, Rounding mode, std::uint32_t rand) {
    const float fl = std::floor(y);
    const float frac = y - fl;  // exact: y and fl share the exponent range
    switch (mode) {
        case Rounding::nearest_even:
            return std::nearbyint(y);
        case Rounding::nearest_away:
            return frac >= 0.5f ? fl + 1.0f : fl;
        case Rounding::truncate:
            return fl;
        case Rounding::biased:
            return frac >= 0.25f ? fl + 1.0f : fl;
        case Rounding::stochastic: {
            const float u = static_cast<float>(rand >> (32 - kStochasticBits)) *
                            std::ldexp(1.0f, -kStochasticBits);
            return u < frac ? fl + 1.0f : fl;
        }
        case Rounding::pseudo_stochastic: {
            const auto bits =
                static_cast<std::uint32_t>(frac * std::ldexp(1.0f, kPseudoFractionBits));
            const std::uint32_t half = kPseudoFractionBits / 2;
            const std::uint32_t hi = bits >> half, lo = bits & ((1u << half) - 1u);
            return hi > lo ? fl + 1.0f : fl;
        }
    }
    return fl;
}

// Magnitude v >> k with rounding; k <= 0 shifts left (exact). v < 2^62 and k <= 62.
inline std::uint64_t round_shift(std::uint64_t v, int k, Rounding mode, std::uint32_t rand) {
    if (k <= 0) return v << -k;
    const std::uint64_t fl = v >> k;
    const std::uint64_t rem = v & ((std::uint64_t{1} << k) - 1);
    const std::uint64_t half = std::uint64_t{1} << (k - 1);
    bool up = false;
    switch (mode) {
        case Rounding::nearest_even:
            up = rem > half || (rem == half && (fl & 1));
            break;
        case Rounding::nearest_away:
            up = rem >= half;
            break;
        case Rounding::truncate:
            up = false;
            break;
        case Rounding::biased:
            up = rem >= (k >= 2 ? std::uint64_t{1} << (k - 2) : 1);
            break;
        case Rounding::stochastic: {
            // A k-bit uniform number u: up with probability rem / 2^k. 32 random bits cover k <=
            // 32; beyond that the low bits of u are zero (bias below 2^-32 of a step).
            const std::uint64_t u =
                k <= 32 ? (rand >> (32 - k)) : (std::uint64_t{rand} << (k - 32));
            up = u < rem;
            break;
        }
        case Rounding::pseudo_stochastic: {
            // NITI: hi = top ceil(k/2) discarded bits, lo = low floor(k/2) bits, doubled when k
            // is odd so both span the same range; up iff hi > lo (no RNG).
            const int lo_bits = k / 2;
            const std::uint64_t hi = rem >> lo_bits;
            std::uint64_t lo = rem & ((std::uint64_t{1} << lo_bits) - 1);
            if (k % 2 == 1) lo <<= 1;
            up = hi > lo;
            break;
        }
    }
    return fl + (up ? 1 : 0);
}

}  // namespace dfp
