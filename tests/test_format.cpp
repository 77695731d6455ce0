// The DFP format on whole tensors: exponent rule, rounding modes, blocks, edge cases, errors,
// threads and ISAs.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "base/error.hpp"
#include "format/quantize.hpp"

namespace dfp {
namespace {

std::vector<Isa> isas() {
    std::vector<Isa> v{Isa::scalar};
    if (cpu_isa() >= Isa::avx512) v.push_back(Isa::avx512);
    return v;
}

Format block_format(int bits, int block) {
    return {.bits = bits, .granularity = Granularity::block, .block = block};
}
Format axis_format(int bits, int axis) {
    return {.bits = bits, .granularity = Granularity::axis, .axis = axis};
}

TEST(Format, ExponentRuleOfThePaper) {
    // E_s = floor(log2 max) - (b - 2) + s
    EXPECT_EQ(shared_exponent(1.0f, 16, 0), -14);
    EXPECT_EQ(shared_exponent(1.99f, 16, 0), -14);
    EXPECT_EQ(shared_exponent(2.0f, 16, 0), -13);
    EXPECT_EQ(shared_exponent(0.75f, 8, 0), -7);
    EXPECT_EQ(shared_exponent(1.0f, 16, 2), -12);
    EXPECT_EQ(shared_exponent(0.0f, 16, 0), 0);
    EXPECT_EQ(shared_exponent(std::ldexp(1.0f, -149), 16, 0), kMinExponent);
    EXPECT_EQ(shared_exponent(3.4e38f, 2, 0), kMaxExponent);
}

TEST(Format, LargestMagnitudeFillsTheMantissa) {
    for (Isa isa : isas()) {
        const std::vector<float> x{0.1f, -3.3f, 2.0f, 1.0f};
        const auto q = quantize<std::int16_t>(x.data(), {4}, dfp16_tensor(), {}, "x", isa);
        ASSERT_EQ(q.exponents.size(), 1u);
        EXPECT_EQ(q.exponents[0], 1 - 14);  // floor(log2 3.3) = 1
        EXPECT_GE(std::abs(q.mantissas[1]), 1 << 14);
        EXPECT_LT(std::abs(q.mantissas[1]), 1 << 15);
        EXPECT_EQ(q.mantissas[2], 16384);  // 2.0 * 2^13
    }
}

// The paper's code rounds negative numbers the wrong way (-2.75 -> -1); every mode here rounds
// the magnitude and then applies the sign.
TEST(Format, RoundingModesAreSymmetricInSign) {
    const std::vector<float> x{16384.0f, 2.75f, -2.75f, 2.5f, -2.5f, 3.5f,
                               -3.5f,    2.25f, -2.25f, 2.2f, -2.2f};
    struct Case {
        Rounding mode;
        std::vector<int> expect;  // mantissas after the first (E_s = 0)
    };
    const Case cases[] = {
        {Rounding::nearest_even, {3, -3, 2, -2, 4, -4, 2, -2, 2, -2}},
        {Rounding::nearest_away, {3, -3, 3, -3, 4, -4, 2, -2, 2, -2}},
        {Rounding::truncate, {2, -2, 2, -2, 3, -3, 2, -2, 2, -2}},
        {Rounding::biased, {3, -3, 3, -3, 4, -4, 3, -3, 2, -2}},
    };
    for (Isa isa : isas())
        for (const Case& c : cases) {
            QuantizeOptions o;
            o.rounding = c.mode;
            const auto q =
                quantize<std::int16_t>(x.data(), {x.size()}, dfp16_tensor(), o, "x", isa);
            ASSERT_EQ(q.exponents[0], 0);
            for (std::size_t i = 1; i < x.size(); ++i)
                EXPECT_EQ(q.mantissas[i], c.expect[i - 1])
                    << rounding_name(c.mode) << " x=" << x[i] << " " << isa_name(isa);
        }
}

TEST(Format, AllZeroBlockHasZeroMantissasAndExponentZero) {
    for (Isa isa : isas()) {
        std::vector<float> x(70, 0.0f);
        x[40] = 5.0f;  // second block of 32 is not zero
        x[10] = -0.0f;
        const auto q = quantize<std::int16_t>(x.data(), {70}, block_format(16, 32), {}, "x", isa);
        ASSERT_EQ(q.exponents.size(), 3u);
        EXPECT_EQ(q.exponents[0], 0);
        EXPECT_EQ(q.exponents[2], 0);
        for (int i = 0; i < 32; ++i) EXPECT_EQ(q.mantissas[i], 0);
        EXPECT_EQ(dequantize(q, isa), x);
    }
}

TEST(Format, SubnormalBlocksAreRepresented) {
    for (Isa isa : isas()) {
        // A block of small subnormals gets an exponent below FP32's own (here -154): it holds
        // them exactly, and dequantization gives them back.
        std::vector<float> x{std::ldexp(1.0f, -149), std::ldexp(-3.0f, -149),
                             std::ldexp(1000.0f, -149), 0.0f};
        const auto q = quantize<std::int16_t>(x.data(), {x.size()}, dfp16_tensor(), {}, "sub", isa);
        EXPECT_EQ(q.exponents[0], 9 - 149 - 14);
        EXPECT_EQ(q.mantissas[2], 1000 << 5);
        EXPECT_EQ(dequantize(q, isa), x);
        // A subnormal beside a normal maximum is far below half a step: it flushes to zero, and
        // measure_error counts it.
        std::vector<float> y{1.0f, std::ldexp(5.0f, -149)};
        const auto r = quantize<std::int16_t>(y.data(), {2}, dfp16_tensor(), {}, "mixed", isa);
        EXPECT_EQ(r.mantissas[1], 0);
        EXPECT_EQ(measure_error(y.data(), r).flushed, 1u);
    }
}

TEST(Format, ValuesAtTheClampSaturateSymmetrically) {
    for (Isa isa : isas()) {
        // max 32767.75 -> E_s = 0, rounds to 32768, clamps to 32767; the negative side the same.
        const std::vector<float> x{32767.75f, -32767.75f, 32767.0f, -32767.0f, 32766.5f};
        const auto q =
            quantize<std::int16_t>(x.data(), {x.size()}, dfp16_tensor(), {}, "edge", isa);
        EXPECT_EQ(q.exponents[0], 0);
        EXPECT_EQ(q.mantissas[0], 32767);
        EXPECT_EQ(q.mantissas[1], -32767);
        EXPECT_EQ(q.mantissas[2], 32767);
        EXPECT_EQ(q.mantissas[3], -32767);
        EXPECT_EQ(q.mantissas[4], 32766);
        EXPECT_EQ(measure_error(x.data(), q).clamped, 2u);
    }
}

TEST(Format, TwoAndSixteenBitMantissas) {
    for (Isa isa : isas()) {
        Format f2;
        f2.bits = 2;  // mantissas -1, 0, 1
        const std::vector<float> x{-1.5f, 0.3f, 1.0f, 0.75f};
        const auto q = quantize<std::int8_t>(x.data(), {4}, f2, {}, "b2", isa);
        EXPECT_EQ(q.exponents[0], 0);
        EXPECT_EQ(q.mantissas, (AlignedVector<std::int8_t>{-1, 0, 1, 1}));
        const auto q16 = quantize<std::int16_t>(x.data(), {4}, dfp16_tensor(), {}, "b16", isa);
        EXPECT_EQ(q16.exponents[0], -14);
        EXPECT_EQ(q16.mantissas, (AlignedVector<std::int16_t>{-24576, 4915, 16384, 12288}));
    }
}

TEST(Format, LastBlockOfARowIsShorter) {
    // rows of 37: blocks of 32 and 5; the short block's exponent comes from its 5 values only
    std::vector<float> x(3 * 37, 1000.0f);
    for (int r = 0; r < 3; ++r)
        for (int j = 32; j < 37; ++j) x[r * 37 + j] = 0.5f;
    for (Isa isa : isas()) {
        const auto q =
            quantize<std::int16_t>(x.data(), {3, 37}, block_format(16, 32), {}, "x", isa);
        ASSERT_EQ(q.exponents.size(), 6u);
        for (int r = 0; r < 3; ++r) {
            EXPECT_EQ(q.exponents[2 * r], 9 - 14);
            EXPECT_EQ(q.exponents[2 * r + 1], -1 - 14);
            EXPECT_EQ(q.mantissas[r * 37 + 36], 16384);
        }
        EXPECT_EQ(dequantize(q, isa), x);
    }
}

TEST(Format, OneExponentPerIndexAlongAnAxis) {
    // shape [2, 3, 4], axis 1: exponent c covers x[o][c][*] for both o
    std::vector<float> x(24);
    for (int o = 0; o < 2; ++o)
        for (int c = 0; c < 3; ++c)
            for (int i = 0; i < 4; ++i)
                x[(o * 3 + c) * 4 + i] = std::ldexp(1.0f + 0.1f * i, 4 * c + o);
    for (Isa isa : isas()) {
        const auto q =
            quantize<std::int16_t>(x.data(), {2, 3, 4}, axis_format(16, 1), {}, "w", isa);
        ASSERT_EQ(q.exponents.size(), 3u);
        for (int c = 0; c < 3; ++c) EXPECT_EQ(q.exponents[c], 4 * c + 1 - 14);
        // the last axis too (inner length 1)
        const auto q2 =
            quantize<std::int16_t>(x.data(), {2, 3, 4}, axis_format(16, 2), {}, "w", isa);
        ASSERT_EQ(q2.exponents.size(), 4u);
        EXPECT_EQ(q2.exponents[3], 9 - 14);  // max over axis-2 index 3: 1.3 * 2^9
    }
}

TEST(Format, NonFiniteInputIsAnErrorNamingTensorAndElement) {
    for (Isa isa : isas())
        for (float bad : {NAN, INFINITY, -INFINITY})
            for (const Format& f : {dfp16_tensor(), block_format(16, 32), axis_format(8, 0)}) {
                std::vector<float> x(100, 1.0f);
                x[77] = bad;
                try {
                    (void)quantize<std::int8_t>(
                        x.data(), {4, 25},
                        [&] {
                            Format g = f;
                            g.bits = 8;
                            return g;
                        }(),
                        {}, "conv2.weights", isa);
                    FAIL() << "no error for " << bad;
                } catch (const Error& e) {
                    const std::string msg = e.what();
                    EXPECT_NE(msg.find("conv2.weights"), std::string::npos) << msg;
                    EXPECT_NE(msg.find("element 77"), std::string::npos) << msg;
                    EXPECT_NE(msg.find(std::isnan(bad) ? "NaN" : "Inf"), std::string::npos) << msg;
                }
            }
}

TEST(Format, InvalidFormatsAreErrors) {
    const std::vector<float> x(8, 1.0f);
    Format f;
    f.bits = 17;
    EXPECT_THROW((void)quantize<std::int16_t>(x.data(), {8}, f, {}, "x"), Error);
    f.bits = 1;
    EXPECT_THROW((void)quantize<std::int16_t>(x.data(), {8}, f, {}, "x"), Error);
    EXPECT_THROW((void)quantize<std::int8_t>(x.data(), {8}, dfp16_tensor(), {}, "x"),
                 Error);  // 16 bits in int8
    EXPECT_THROW((void)quantize<std::int16_t>(x.data(), {8}, axis_format(16, 1), {}, "x"), Error);
    EXPECT_THROW((void)quantize<std::int16_t>(x.data(), {8}, block_format(16, 0), {}, "x"), Error);
    QuantizeOptions o;
    o.shift = 15;
    EXPECT_THROW((void)quantize<std::int16_t>(x.data(), {8}, dfp16_tensor(), o, "x"), Error);
    EXPECT_THROW(parse_rounding("nearest", "--rounding"), Error);
    EXPECT_EQ(parse_rounding("pseudo_stochastic", "--rounding"), Rounding::pseudo_stochastic);
}

TEST(Format, ResultDoesNotDependOnThreadsOrIsa) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    std::vector<float> x(300007);  // above the parallel threshold, not a multiple of anything
    for (float& v : x) v = normal(rng);
    for (const Format& f : {dfp16_tensor(), block_format(8, 32), axis_format(16, 0)})
        for (Rounding mode :
             {Rounding::stochastic, Rounding::pseudo_stochastic, Rounding::nearest_even}) {
            QuantizeOptions o;
            o.rounding = mode;
            o.seed = 99;
            const Shape shape{7, 42858, 1};
            Format g = f;
            const int threads = omp_get_max_threads();
            omp_set_num_threads(1);
            const auto one = quantize<std::int16_t>(x.data(), shape, g, o, "x", Isa::scalar);
            omp_set_num_threads(std::max(2, threads));
            for (Isa isa : isas()) {
                const auto many = quantize<std::int16_t>(x.data(), shape, g, o, "x", isa);
                EXPECT_EQ(one.mantissas, many.mantissas)
                    << g.name() << " " << rounding_name(mode) << " " << isa_name(isa);
                EXPECT_EQ(one.exponents, many.exponents);
                EXPECT_EQ(dequantize(one, Isa::scalar), dequantize(many, isa));
            }
            omp_set_num_threads(threads);
        }
}

// What quantize_into makes of x in one DFP16 and one DFP8 exponent per tensor, rounding `mode`.
std::pair<DfpTensor<std::int16_t>, DfpTensor<std::int8_t>> reference_pair(
    const std::vector<float>& x, const Shape& shape, Rounding mode, std::uint64_t seed, Isa isa) {
    QuantizeOptions o;
    o.rounding = mode;
    o.seed = seed;
    return {quantize<std::int16_t>(x.data(), shape, dfp16_tensor(), o, "x", isa),
            quantize<std::int8_t>(x.data(), shape, dfp8_tensor(), o, "x", isa)};
}

// An expected exponent changes how often src is read, never the result: right, wrong either way,
// absurd or absent, every rounding, int16 and int8, on each ISA; a NaN is still named.
TEST(Format, ExpectedExponentNeverChangesTheResult) {
    std::mt19937 rng(6);
    std::normal_distribution<float> normal;
    std::vector<float> x(200003);  // several runs of BlockLayout::kTensorChunk, a short last one
    for (float& v : x) v = 3.0f * normal(rng);
    const Shape shape{x.size()};
    for (Isa isa : isas())
        for (Rounding mode : {Rounding::nearest_even, Rounding::stochastic, Rounding::truncate}) {
            QuantizeOptions o;
            o.rounding = mode;
            o.seed = 7;
            const auto [want16, want8] = reference_pair(x, shape, mode, o.seed, isa);
            const int e16 = want16.exponents.at(0), e8 = want8.exponents.at(0);
            for (const int delta : {0, -1, 1, -200, 100000}) {
                o.expected_exponent = e16 + delta;
                const auto got16 =
                    quantize<std::int16_t>(x.data(), shape, dfp16_tensor(), o, "x", isa);
                EXPECT_EQ(got16.mantissas, want16.mantissas) << isa_name(isa) << " " << delta;
                EXPECT_EQ(got16.exponents, want16.exponents);
                o.expected_exponent = e8 + delta;
                const auto got8 =
                    quantize<std::int8_t>(x.data(), shape, dfp8_tensor(), o, "x", isa);
                EXPECT_EQ(got8.mantissas, want8.mantissas) << isa_name(isa) << " " << delta;
                EXPECT_EQ(got8.exponents, want8.exponents);
            }
            // Reusing the destination, as the layers do: stale mantissas must not survive.
            DfpTensor<std::int16_t> reused = want16;
            std::vector<float> y(x);
            y[12345] *= 64.0f;  // the maximum moves up: a wrong guess
            o.expected_exponent = e16;
            quantize_into(y.data(), shape, dfp16_tensor(), o, "y", reused, isa);
            o.expected_exponent.reset();
            const auto fresh = quantize<std::int16_t>(y.data(), shape, dfp16_tensor(), o, "y", isa);
            EXPECT_EQ(reused.mantissas, fresh.mantissas);
            EXPECT_EQ(reused.exponents, fresh.exponents);
        }
    std::vector<float> bad(x);
    bad[150001] = NAN;
    QuantizeOptions o;
    o.expected_exponent = 1;
    try {
        (void)quantize<std::int16_t>(bad.data(), shape, dfp16_tensor(), o, "act");
        FAIL() << "no error for NaN";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("element 150001"), std::string::npos) << e.what();
    }
}

// Quantized part by part (PartwiseQuantizer) in any order and any cut, a tensor is what
// quantize_into makes of it with the same options when the guessed exponent holds, int16 and int8,
// every rounding, on each ISA; a wrong guess or a NaN is reported (and the exponent set right for
// the next guess), and only one exponent per tensor is taken.
TEST(Format, PartwiseQuantizationIsQuantizeIntoWhenTheGuessHolds) {
    std::mt19937 rng(8);
    std::normal_distribution<float> normal;
    std::vector<float> x(4 * 65536 + 333);
    for (float& v : x) v = 5.0f * normal(rng);
    const Shape shape{x.size() / 7, 7};
    const std::size_t n = shape_numel(shape);
    // Cuts at awkward places, visited out of order.
    std::vector<std::size_t> cuts{0, 1, 17, 4099, 70000, 70001, 200000, n};
    std::vector<std::size_t> order(cuts.size() - 1);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    const auto run = [&]<class M>(DfpTensor<M>& dst, const Format& f, const QuantizeOptions& o,
                                  Isa isa, const std::vector<float>& v) {
        PartwiseQuantizer<M> parts(shape, f, o, "x", dst, isa);
        for (std::size_t i : order) parts.part(v.data() + cuts[i], cuts[i], cuts[i + 1] - cuts[i]);
        return parts.finish();
    };
    for (Isa isa : isas())
        for (Rounding mode : {Rounding::nearest_even, Rounding::stochastic}) {
            QuantizeOptions o;
            o.rounding = mode;
            o.seed = 9;
            const auto [want16, want8] = reference_pair(x, shape, mode, o.seed, isa);
            // A reused destination (as the layers' buffers): nothing stale may survive.
            DfpTensor<std::int16_t> got16 = want16;
            std::fill(got16.mantissas.begin(), got16.mantissas.end(), std::int16_t{123});
            DfpTensor<std::int8_t> got8;
            o.expected_exponent = want16.exponents.at(0);
            EXPECT_TRUE(run(got16, dfp16_tensor(), o, isa, x)) << isa_name(isa);
            EXPECT_EQ(got16.mantissas, want16.mantissas) << isa_name(isa) << " " << int(mode);
            EXPECT_EQ(got16.exponents, want16.exponents);
            EXPECT_EQ(got16.shape, want16.shape);
            o.expected_exponent = want8.exponents.at(0);
            EXPECT_TRUE(run(got8, dfp8_tensor(), o, isa, x)) << isa_name(isa);
            EXPECT_EQ(got8.mantissas, want8.mantissas) << isa_name(isa) << " " << int(mode);
            // A guess off by one either way fails, and leaves the right exponent behind.
            for (const int delta : {-1, 1}) {
                o.expected_exponent = want16.exponents.at(0) + delta;
                EXPECT_FALSE(run(got16, dfp16_tensor(), o, isa, x)) << delta;
                EXPECT_EQ(got16.exponents, want16.exponents) << delta;
            }
        }
    std::vector<float> bad(x);
    bad[70000] = INFINITY;
    QuantizeOptions o;
    o.expected_exponent = 0;
    DfpTensor<std::int16_t> q;
    EXPECT_FALSE(run(q, dfp16_tensor(), o, active_isa(), bad));
    Format axis = dfp16_tensor();
    axis.granularity = Granularity::axis;
    EXPECT_THROW(PartwiseQuantizer<std::int16_t>(shape, axis, o, "x", q), Error);
    o.expected_exponent.reset();
    EXPECT_THROW(PartwiseQuantizer<std::int16_t>(shape, dfp16_tensor(), o, "x", q), Error);
}

// A keep mask gives the tensor of the masked values (src where keep > 0, else 0) in every
// granularity, with and without a guessed exponent, on each ISA; a NaN where the mask drops it is
// no error, one where it keeps it is named.
TEST(Format, KeepMaskQuantizesTheMaskedTensor) {
    std::mt19937 rng(12);
    std::normal_distribution<float> d(0.0f, 3.0f);
    const Shape shape{700, 300};  // several 64 Ki-element runs
    std::vector<float> x(shape_numel(shape)), keep(x.size()), masked(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        x[i] = d(rng);
        keep[i] = d(rng);
        if (i % 7 == 0 && !(keep[i] > 0.0f)) x[i] = NAN;
        masked[i] = keep[i] > 0.0f ? x[i] : 0.0f;
    }
    Format block = dfp8_tensor();
    block.granularity = Granularity::block;
    for (Isa isa : {Isa::scalar, active_isa()})
        for (const Format& f : {dfp16_tensor(), block})
            for (const std::optional<int> guess : {std::optional<int>{}, std::optional<int>{-10}}) {
                QuantizeOptions o;
                o.expected_exponent = guess;
                o.rounding = Rounding::stochastic;
                DfpTensor<std::int16_t> want, got;
                quantize_into(masked.data(), shape, f, o, "x", want, isa);
                quantize_into(x.data(), shape, f, o, "x", got, isa, keep.data());
                EXPECT_EQ(got.mantissas, want.mantissas) << isa_name(isa) << " " << f.name();
                EXPECT_EQ(got.exponents, want.exponents) << isa_name(isa) << " " << f.name();
            }
    std::size_t kept_nan = 0;
    while (!(keep[kept_nan] > 0.0f) || kept_nan % 7 == 0) ++kept_nan;
    x[kept_nan] = NAN;
    DfpTensor<std::int16_t> q;
    try {
        quantize_into(x.data(), shape, dfp16_tensor(), {}, "grad", q, active_isa(), keep.data());
        FAIL() << "no error for a kept NaN";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("element " + std::to_string(kept_nan) + " is NaN"),
                  std::string::npos)
            << e.what();
    }
}

TEST(Format, StochasticRoundingDependsOnTheSeed) {
    std::vector<float> x(1000, 0.5f);
    x[0] = 16384.0f;  // E_s = 0, so every 0.5 is a coin flip
    QuantizeOptions a, b;
    a.rounding = b.rounding = Rounding::stochastic;
    a.seed = 1;
    b.seed = 2;
    const auto qa = quantize<std::int16_t>(x.data(), {1000}, dfp16_tensor(), a, "x");
    const auto qb = quantize<std::int16_t>(x.data(), {1000}, dfp16_tensor(), b, "x");
    EXPECT_NE(qa.mantissas, qb.mantissas);
    EXPECT_EQ(qa.mantissas,
              quantize<std::int16_t>(x.data(), {1000}, dfp16_tensor(), a, "x").mantissas);
}

TEST(Format, MeasureErrorReportsSqnrAndRelativeError) {
    const std::vector<float> x{16384.0f, 0.25f, -0.75f};
    const auto q = quantize<std::int16_t>(x.data(), {3}, dfp16_tensor(), {}, "x");
    const QuantizeError e = measure_error(x.data(), q);
    EXPECT_EQ(e.count, 3u);
    EXPECT_EQ(e.flushed, 1u);  // 0.25 -> 0
    EXPECT_DOUBLE_EQ(e.noise_energy, 0.25 * 0.25 + 0.25 * 0.25);
    EXPECT_NEAR(e.sqnr_db(), 10 * std::log10(e.signal_energy / e.noise_energy), 1e-12);
    EXPECT_TRUE(std::isinf(
        measure_error(x.data(), quantize<std::int16_t>(x.data(), {1}, dfp16_tensor(), {}, "x"))
            .sqnr_db()));
}

}  // namespace
}  // namespace dfp
