// NITI's weight update (PAPERS.md section 2), integer only: the INT32 weight gradient is narrowed
// so that its largest magnitude has `mu` bits (pseudo-stochastic rounding), then subtracted from
// the int8 weights and clamped to +-127. mu is the learning rate; the weight exponent never
// changes after initialisation. A gradient whose largest magnitude already has <= mu bits is
// subtracted as it is (never scaled up: NITI shifts only right).
//
// With the optional 16-bit accumulator (NITI's ImageNet setting), every weight keeps 8 more
// fraction bits: the gradient is narrowed to mu + 8 bits and subtracted from the int16
// accumulator (clamped to +-127 * 2^8), and the int8 weight is the accumulator shifted right by 8
// with pseudo-stochastic rounding, every step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "integer/tensor.hpp"

namespace dfp::integer {

inline constexpr int kAccumulatorFractionBits = 8;
// mu: 1 moves the largest-gradient weight by one step; 7 by up to the weight range itself.
inline constexpr int kMinMu = 1, kMaxMu = 7;

struct UpdateRule {
    int mu = 5;
    bool accumulator = false;  // the 16-bit weight accumulator
};

// A trainable integer tensor, named "<layer>.weight".
struct Int8Weight {
    std::string name;
    Int8Tensor value;
    // With the 16-bit accumulator only: value * 2^8 plus 8 fraction bits (filled on first use).
    std::vector<std::int16_t> accumulator;
};

// w -= narrow(grad, mu) as above; grad holds w.value.numel() values. Throws dfp::Error naming the
// weight when rule.mu is outside kMinMu..kMaxMu.
void update_weight(Int8Weight& w, const std::int32_t* grad, const UpdateRule& rule);

}  // namespace dfp::integer
