// The paper's DFP primitives: multiply, add with exponent alignment, down-conversion, and the
// integer rounding of a right shift in every mode.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/error.hpp"
#include "format/primitives.hpp"
#include "format/quantize.hpp"
#include "format/rounding.hpp"

namespace dfp {
namespace {

Dfp16Tensor make16(AlignedVector<std::int16_t> m, int e) {
    return {{m.size()}, dfp16_tensor(), std::move(m), {e}};
}

TEST(RoundShift, EveryModeOnTies) {
    // 0b1011 >> 2 = 2.75; 0b1010 >> 2 = 2.5; 0b1001 >> 2 = 2.25
    EXPECT_EQ(round_shift(0b1011, 2, Rounding::nearest_even, 0), 3u);
    EXPECT_EQ(round_shift(0b1010, 2, Rounding::nearest_even, 0), 2u);
    EXPECT_EQ(round_shift(0b1110, 2, Rounding::nearest_even, 0), 4u);  // 3.5
    EXPECT_EQ(round_shift(0b1010, 2, Rounding::nearest_away, 0), 3u);
    EXPECT_EQ(round_shift(0b1011, 2, Rounding::truncate, 0), 2u);
    EXPECT_EQ(round_shift(0b1001, 2, Rounding::biased, 0), 3u);     // discarded 01: second bit set
    EXPECT_EQ(round_shift(0b10001, 3, Rounding::biased, 0), 2u);    // discarded 001: below 1/4
    EXPECT_EQ(round_shift(0b10010, 3, Rounding::biased, 0), 3u);    // discarded 010: 1/4
    EXPECT_EQ(round_shift(5, -3, Rounding::nearest_even, 0), 40u);  // left shift is exact
    EXPECT_EQ(round_shift(5, 0, Rounding::truncate, 0), 5u);
}

TEST(RoundShift, PseudoStochasticSplitsTheDiscardedBits) {
    // k = 4: hi = top 2 bits, lo = low 2 bits; up iff hi > lo
    EXPECT_EQ(round_shift(0b1'1001, 4, Rounding::pseudo_stochastic, 0), 2u);  // hi 10 > lo 01
    EXPECT_EQ(round_shift(0b1'0110, 4, Rounding::pseudo_stochastic, 0), 1u);  // hi 01 < lo 10
    // k = 3 (odd): hi = top 2 bits, lo = low bit doubled
    EXPECT_EQ(round_shift(0b1'101, 3, Rounding::pseudo_stochastic, 0), 1u);  // hi 10 == lo 1<<1
    EXPECT_EQ(round_shift(0b1'110, 3, Rounding::pseudo_stochastic, 0), 2u);  // hi 11 > lo 0
    // k = 1: lo is empty (0), so any discarded 1 rounds up
    EXPECT_EQ(round_shift(0b11, 1, Rounding::pseudo_stochastic, 0), 2u);
}

TEST(RoundShift, StochasticProbabilityIsTheDiscardedFraction) {
    // 7 + 3/8 over many counters: rounds up 3/8 of the time, within 5 sigma on a fixed seed.
    constexpr int kN = 1 << 16;
    int ups = 0;
    for (int i = 0; i < kN; ++i)
        ups += round_shift((7 << 3) | 3, 3, Rounding::stochastic,
                           random_bits(9, static_cast<std::uint64_t>(i))) == 8;
    const double p = 3.0 / 8, sigma = std::sqrt(p * (1 - p) / kN);
    EXPECT_NEAR(static_cast<double>(ups) / kN, p, 5 * sigma);
}

TEST(Primitives, MultiplyIsExactWithSummedExponents) {
    const auto a = make16({32767, -32767, 3, 0}, -14);
    const auto b = make16({32767, 32767, -5, 9}, 7);
    const DfpWideTensor c = multiply(a, b);
    EXPECT_EQ(c.exponents[0], -7);
    EXPECT_EQ(c.mantissas, (AlignedVector<std::int32_t>{1073676289, -1073676289, -15, 0}));
    const auto fa = dequantize(a), fb = dequantize(b);
    const auto fc = dequantize_wide(c);
    for (std::size_t i = 0; i < fc.size(); ++i)
        EXPECT_EQ(fc[i], static_cast<float>(static_cast<double>(fa[i]) * fb[i]));
}

TEST(Primitives, AddAlignsToTheLargerExponent) {
    // a = 3 * 2^0, b = 5 * 2^2: a is shifted right by 2 (0.75 -> 1), result 6 * 2^2 = 24
    const auto a = make16({3, 32767, -3}, 0);
    const auto b = make16({5, 32767, 0}, 2);
    const DfpWideTensor c = add(a, b, Rounding::nearest_even);
    EXPECT_EQ(c.exponents[0], 2);
    EXPECT_EQ(c.mantissas, (AlignedVector<std::int32_t>{6, 8192 + 32767, -1}));  // needs one more bit
    const DfpWideTensor t = add(a, b, Rounding::truncate);
    EXPECT_EQ(t.mantissas[0], 5);
}

TEST(Primitives, AddIgnoresTheExponentOfAnAllZeroBlock) {
    const auto a = make16({0, 0}, 40);  // exponent of a zero block is a convention
    const auto b = make16({7, -9}, -3);
    const DfpWideTensor c = add(a, b, Rounding::nearest_even);
    EXPECT_EQ(c.exponents[0], -3);
    EXPECT_EQ(c.mantissas, (AlignedVector<std::int32_t>{7, -9}));
}

TEST(Primitives, OperandsMustShareShapeAndBlocks) {
    const auto a = make16({1, 2}, 0);
    const auto b = make16({1, 2, 3}, 0);
    EXPECT_THROW(multiply(a, b), Error);
    EXPECT_THROW(add(a, b, Rounding::nearest_even), Error);
}

TEST(Primitives, DownConvertTakesAFreshExponentFromTheMaximum) {
    // max |m| = 2^20 + 5 has bit length 21: to 16 bits, shift right by 21 - 15 = 6
    DfpWideTensor x{{3}, dfp16_tensor(), {(1 << 20) + 5, -(1 << 20) - 5, 100}, {-30}};
    const Dfp16Tensor y = down_convert<std::int16_t>(x, 16, {}, "acc");
    EXPECT_EQ(y.exponents[0], -24);
    EXPECT_EQ(y.mantissas, (AlignedVector<std::int16_t>{16384, -16384, 2}));  // 100/64 = 1.5625 -> 2
    // Values that already fit stay exact (no left shift is needed to be exact).
    DfpWideTensor small{{2}, dfp16_tensor(), {1000, -7}, {3}};
    const Dfp16Tensor s = down_convert<std::int16_t>(small, 16, {}, "small");
    EXPECT_EQ(s.exponents[0], 3);
    EXPECT_EQ(s.mantissas, (AlignedVector<std::int16_t>{1000, -7}));
}

TEST(Primitives, DownConvertToInt8FollowsNiti) {
    // NITI: b = bit length of the max, shift k = b - 7. max 128 (bit length 8) -> k = 1.
    DfpWideTensor x{{3}, dfp16_tensor(), {128, -127, 3}, {0}};
    QuantizeOptions o;
    o.rounding = Rounding::pseudo_stochastic;
    const Dfp8Tensor y = down_convert<std::int8_t>(x, 8, o, "acc");
    EXPECT_EQ(y.exponents[0], 1);
    EXPECT_EQ(y.mantissas,
              (AlignedVector<std::int8_t>{64, -64, 2}));  // 127/2 and 3/2 round up (k = 1)
}

TEST(Primitives, DownConvertClampsAtTheLimit) {
    // 65535 -> 16 bits: L = 16, shift 1: 32767.5 rounds to 32768, clamped to 32767
    DfpWideTensor x{{2}, dfp16_tensor(), {65535, -65535}, {0}};
    const Dfp16Tensor y = down_convert<std::int16_t>(x, 16, {}, "acc");
    EXPECT_EQ(y.exponents[0], 1);
    EXPECT_EQ(y.mantissas, (AlignedVector<std::int16_t>{32767, -32767}));
    EXPECT_THROW((void)down_convert<std::int8_t>(x, 9, {}, "acc"), Error);
}

TEST(Primitives, DownConvertAgreesWithQuantizingTheSameValues) {
    // Both are the paper's down-conversion: from INT32 or from FP32, the same exponent and
    // mantissas when the INT32 values are exact in FP32.
    std::mt19937 rng(4);
    std::uniform_int_distribution<std::int32_t> dist(-(1 << 23), 1 << 23);
    DfpWideTensor x{{1000}, dfp16_tensor(), AlignedVector<std::int32_t>(1000), {-5}};
    for (auto& v : x.mantissas) v = dist(rng);
    const auto from_int = down_convert<std::int16_t>(x, 16, {}, "acc");
    const std::vector<float> f = dequantize_wide(x);
    const auto from_float = quantize<std::int16_t>(f.data(), {1000}, dfp16_tensor(), {}, "acc");
    EXPECT_EQ(from_int.exponents, from_float.exponents);
    EXPECT_EQ(from_int.mantissas, from_float.mantissas);
}

}  // namespace
}  // namespace dfp
