// NITI's integer cross-entropy gradient (PAPERS.md section 2): softmax in base 2 on the int8
// logits, probabilities with 11 fraction bits, minus the one-hot target, then a stochastic 4-bit
// shift to int8. No floating point.
//
// Per sample, with logits a (int8) of exponent e:
//  - e > -7: t_i = floor((a_i - max a) * 2^e * log2(e)), with log2(e) ~ 47274 / 2^15, plus 10 so
//    that the largest is 10; negatives clamp to 0; u_i = 2^t_i - 1 (the largest class 1023).
//  - e <= -7 (|logit| < 1): exp(z) ~ 1 + z + z^2/2 with z = a_i 2^e, scaled by 2^(1-e) to the
//    integer u_i = 2^(1-e) + 2 a_i + (a_i^2 >> -e) (> 0 as |a_i| < 2^-e). Logits below 2^-40 of a
//    step (e < -40) are all but equal: e is taken as -40 there (no 64-bit overflow).
//  - P_i = floor(u_i 2^11 / sum u); diff_i = P_i - 2^11 [i == label], i.e. (p - y) 2^11 in
//    [-2^11, 2^11]; shifted right by 4 with true stochastic rounding (format/rng.hpp, keyed by
//    seed and element index) and clamped to +-127, exponent -7.
// The gradient is that of the summed (not averaged) loss; the update's narrowing to mu bits
// makes the overall scale irrelevant.
#pragma once

#include <cstdint>
#include <span>

#include "integer/tensor.hpp"

namespace dfp::integer {

inline constexpr int kProbabilityBits = 11;  // fraction bits of P
inline constexpr int kLossGradientShift = 4;
inline constexpr int kLossGradientExponent = kLossGradientShift - kProbabilityBits;

// logits {N, K}, labels (N) in [0, K). Throws dfp::Error on a label out of range or a batch
// mismatch.
void cross_entropy_gradient(const Int8Tensor& logits, std::span<const int> labels,
                            std::uint64_t seed, Int8Tensor& diff);

// Samples whose largest logit is their label (the first on ties).
std::int64_t count_correct(const Int8Tensor& logits, std::span<const int> labels);

}  // namespace dfp::integer
