// Properties of quantization that must hold for any data and format (RapidCheck), and the
// statistical property of stochastic rounding on fixed seeds.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "format/quantize.hpp"

namespace dfp {
namespace {

constexpr Rounding kDeterministicModes[] = {Rounding::nearest_even, Rounding::nearest_away,
                                            Rounding::truncate, Rounding::biased};

// A random format: bits 2..16, any granularity over the shape {rows, cols}.
Format gen_format(std::size_t rows, std::size_t cols) {
    Format f;
    f.bits = *rc::gen::inRange(2, 17);
    switch (*rc::gen::inRange(0, 3)) {
        case 0:
            break;
        case 1:
            f.granularity = Granularity::axis;
            f.axis = *rc::gen::inRange(0, 2);
            break;
        default:
            f.granularity = Granularity::block;
            f.block = *rc::gen::inRange(1, static_cast<int>(cols) + 3);
    }
    (void)rows;
    return f;
}

// Finite floats over a random range of magnitudes (huge, tiny, subnormal, mixed).
std::vector<float> gen_values(std::size_t n) {
    const int base = *rc::gen::inRange(-150, 110);
    const int spread = *rc::gen::inRange(0, 40);
    std::vector<float> v(n);
    for (float& x : v) {
        const float m = static_cast<float>(*rc::gen::inRange(-1000000, 1000001)) / 1000000.0f;
        x = std::ldexp(m, base + *rc::gen::inRange(0, spread + 1));
        if (!std::isfinite(x)) x = 0.0f;
    }
    return v;
}

template <class M>
DfpTensor<M> quantize_any(const std::vector<float>& x, const Shape& shape, const Format& f,
                          const QuantizeOptions& o) {
    return quantize<M>(x.data(), shape, f, o, "prop");
}

// Per element: the exponent of its block.
template <class M>
std::vector<int> element_exponents(const DfpTensor<M>& q) {
    std::vector<int> e(q.mantissas.size());
    const BlockLayout layout(q.shape, q.format);
    for (std::size_t i = 0; i < layout.runs(); ++i) {
        const Run r = layout.run(i);
        for (std::size_t j = r.offset; j < r.offset + r.count; ++j) e[j] = q.exponents[r.exponent];
    }
    return e;
}

RC_GTEST_PROP(FormatProperty, NearestErrorIsAtMostHalfAStepOfItsBlock, ()) {
    const std::size_t rows = *rc::gen::inRange(1, 6), cols = *rc::gen::inRange(1, 70);
    const Format f = gen_format(rows, cols);
    const std::vector<float> x = gen_values(rows * cols);
    QuantizeOptions o;
    o.rounding = *rc::gen::element(Rounding::nearest_even, Rounding::nearest_away);
    const auto q = quantize_any<std::int16_t>(x, {rows, cols}, f, o);
    const auto e = element_exponents(q);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double step = std::ldexp(1.0, e[i]);
        const double top = f.max_mantissa() * step;
        const double err = std::fabs(static_cast<double>(x[i]) - q.mantissas[i] * step);
        if (std::fabs(x[i]) <= top)
            RC_ASSERT(err <= 0.5 * step);
        else  // beyond the largest mantissa (at most half a step with shift 0): saturates
            RC_ASSERT(err == std::fabs(x[i]) - top);
    }
}

RC_GTEST_PROP(FormatProperty, ValuesOnTheGridRoundTripExactly, ()) {
    const std::size_t rows = *rc::gen::inRange(1, 5), cols = *rc::gen::inRange(1, 50);
    const Format f = gen_format(rows, cols);
    const int e = *rc::gen::inRange(-160, 100);
    std::vector<float> x(rows * cols);
    for (float& v : x)
        v = std::ldexp(
            static_cast<float>(*rc::gen::inRange(-f.max_mantissa(), f.max_mantissa() + 1)), e);
    QuantizeOptions o;
    o.rounding =
        *rc::gen::element(Rounding::nearest_even, Rounding::nearest_away, Rounding::truncate,
                          Rounding::biased, Rounding::stochastic, Rounding::pseudo_stochastic);
    o.seed = *rc::gen::arbitrary<std::uint64_t>();
    // Only values FP32 can hold exactly are on the grid (the smallest subnormal is 2^-149).
    for (float v : x) RC_PRE(v == 0.0f || std::fabs(v) >= std::ldexp(1.0f, -149));
    if (f.bits <= 8)
        RC_ASSERT(dequantize(quantize_any<std::int8_t>(x, {rows, cols}, f, o)) == x);
    else
        RC_ASSERT(dequantize(quantize_any<std::int16_t>(x, {rows, cols}, f, o)) == x);
}

RC_GTEST_PROP(FormatProperty, QuantizationIsMonotonic, ()) {
    const std::size_t n = *rc::gen::inRange(2, 200);
    std::vector<float> x = gen_values(n);
    std::sort(x.begin(), x.end());
    Format f;
    f.bits = *rc::gen::inRange(2, 17);
    for (Rounding mode : kDeterministicModes) {
        QuantizeOptions o;
        o.rounding = mode;
        const auto y = dequantize(quantize_any<std::int16_t>(x, {n}, f, o));
        for (std::size_t i = 1; i < n; ++i) RC_ASSERT(y[i - 1] <= y[i]);
    }
}

// Stochastic rounding is unbiased: for N copies of a value a fraction f of a step above the
// grid, each rounding error is -f or 1-f steps (variance f(1-f) <= 1/4), so the mean error has
// a standard deviation of at most 0.5/sqrt(N) steps; the 24-bit comparison adds a bias below
// 2^-24. The test asserts |mean| <= 5 sigma + 2^-24 on fixed seeds: it can fail only if the
// rounding is biased (or, with fixed seeds, never at random).
TEST(FormatStatistics, StochasticRoundingIsUnbiased) {
    constexpr std::size_t kN = 1 << 18;
    const double bound = 5 * 0.5 / std::sqrt(static_cast<double>(kN)) + std::ldexp(1.0, -24);
    for (double frac : {0.5, 0.1, 0.9, 0.013, 0.3333})
        for (std::uint64_t seed : {1ull, 12345ull}) {
            std::vector<float> x(
                kN, static_cast<float>(-100.0 - frac));  // negative: magnitude rounding
            x[0] = 16384.0f;                             // E_s = 0: steps of 1
            QuantizeOptions o;
            o.rounding = Rounding::stochastic;
            o.seed = seed;
            const auto q = quantize<std::int16_t>(x.data(), {kN}, dfp16_tensor(), o, "x");
            double sum = 0;
            for (std::size_t i = 1; i < kN; ++i) sum += q.mantissas[i] - static_cast<double>(x[i]);
            const double mean = sum / (kN - 1);
            EXPECT_LE(std::fabs(mean), bound) << "frac " << frac << " seed " << seed;
            // and it really is random: both neighbours of the grid occur
            EXPECT_NE(*std::min_element(q.mantissas.begin() + 1, q.mantissas.end()),
                      *std::max_element(q.mantissas.begin() + 1, q.mantissas.end()));
        }
}

// NITI's pseudo-stochastic rounding needs no RNG: the low half of the discarded bits stands in
// for the random number, so it is unbiased only when those bits look random (full-precision
// data; not data with few fraction bits). For fractions t/2^24 with t uniform, its bias is
// -2^-13 of a step (lo averages half a unit of hi); the mean error over N values adds at most
// 0.5/sqrt(N) steps of noise per sigma. Asserted: |mean| <= 2^-13 + 5 sigma, on a fixed seed.
TEST(FormatStatistics, PseudoStochasticRoundingIsNearlyUnbiasedOnFullPrecisionData) {
    constexpr std::size_t kN = 1 << 16;
    std::mt19937 rng(11);
    std::uniform_int_distribution<std::uint32_t> fraction(0, (1u << 24) - 1);
    std::vector<float> x(kN);
    x[0] = 16384.0f;
    for (std::size_t i = 1; i < kN; ++i)
        x[i] = 7.0f + std::ldexp(static_cast<float>(fraction(rng)), -24);
    QuantizeOptions o;
    o.rounding = Rounding::pseudo_stochastic;
    const auto q = quantize<std::int16_t>(x.data(), {kN}, dfp16_tensor(), o, "x");
    double sum = 0;
    for (std::size_t i = 1; i < kN; ++i) sum += q.mantissas[i] - static_cast<double>(x[i]);
    EXPECT_LE(std::fabs(sum / (kN - 1)), std::ldexp(1.0, -13) + 5 * 0.5 / std::sqrt(double(kN)));
    // Truncation, for contrast, is biased by half a step on the same data.
    o.rounding = Rounding::truncate;
    const auto t = quantize<std::int16_t>(x.data(), {kN}, dfp16_tensor(), o, "x");
    double tsum = 0;
    for (std::size_t i = 1; i < kN; ++i) tsum += t.mantissas[i] - static_cast<double>(x[i]);
    EXPECT_NEAR(tsum / (kN - 1), -0.5, 1e-3);
}

}  // namespace
}  // namespace dfp
