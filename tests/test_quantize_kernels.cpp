// The AVX-512 quantize/dequantize kernels against their scalar twins, bit for bit, on awkward
// sizes, every rounding mode, extreme scales and edge values.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "format/quantize_kernels.hpp"

namespace dfp {
namespace {

constexpr Rounding kModes[] = {Rounding::nearest_even, Rounding::nearest_away,
                               Rounding::truncate,     Rounding::biased,
                               Rounding::stochastic,   Rounding::pseudo_stochastic};
constexpr std::size_t kSizes[] = {1, 2, 7, 15, 16, 17, 31, 33, 100, 1000, 1027};

bool have_avx512() {
    return cpu_isa() >= Isa::avx512;
}

// Values with a spread of magnitudes, signs, ties (x.5 after scaling), zeros and -0.
std::vector<float> awkward_values(std::size_t n, int exponent, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> pick(0, 9), mant(-32767, 32767);
    std::vector<float> v(n);
    for (float& x : v) {
        switch (pick(rng)) {
            case 0:
                x = 0.0f;
                break;
            case 1:
                x = -0.0f;
                break;
            case 2:
                x = std::ldexp(static_cast<float>(mant(rng)) + 0.5f, exponent);
                break;  // a tie
            case 3:
                x = std::ldexp(32767.0f + 0.75f, exponent) * (pick(rng) < 5 ? 1 : -1);
                break;  // clamps
            default:
                x = std::ldexp(normal(rng) * 6000.0f, exponent);
        }
    }
    return v;
}

template <class M>
void expect_same_quantize(const QuantizeKernels& fast, const std::vector<float>& src,
                          const QuantizeRun& r) {
    const auto& ref = scalar_quantize_kernels();
    std::vector<M> a(src.size() + 1, 77), b(src.size() + 1, 77);  // one guard element
    std::uint32_t max_a = 0, max_b = 0;
    if constexpr (sizeof(M) == 2) {
        max_a = ref.quantize_s16(src.data(), a.data(), src.size(), r);
        max_b = fast.quantize_s16(src.data(), b.data(), src.size(), r);
    } else {
        max_a = ref.quantize_s8(src.data(), a.data(), src.size(), r);
        max_b = fast.quantize_s8(src.data(), b.data(), src.size(), r);
    }
    ASSERT_EQ(b.back(), 77) << "kernel wrote past the end";
    // Both return the largest magnitude they read, as max_abs_bits does.
    ASSERT_EQ(max_a, r.keep ? ref.max_abs_bits_kept(src.data(), r.keep, src.size())
                            : ref.max_abs_bits(src.data(), src.size()));
    ASSERT_EQ(max_b, max_a);
    // Streaming stores (QuantizeRun::stream) write the same mantissas, from any alignment of dst
    // (offsets 0..3 elements: a head before the first 16-element boundary, or none).
    for (std::size_t offset = 0; offset < 4; ++offset) {
        std::vector<M> c(src.size() + 5, 77);
        QuantizeRun streamed = r;
        streamed.stream = true;
        std::uint32_t max_c = 0;
        if constexpr (sizeof(M) == 2)
            max_c = fast.quantize_s16(src.data(), c.data() + offset, src.size(), streamed);
        else
            max_c = fast.quantize_s8(src.data(), c.data() + offset, src.size(), streamed);
        ASSERT_EQ(max_c, max_a);
        ASSERT_TRUE(std::equal(a.begin(), a.end() - 1, c.begin() + long(offset)))
            << "streamed, dst offset " << offset << ", " << src.size() << " elements";
        ASSERT_EQ(c[offset + src.size()], 77) << "streamed kernel wrote past the end";
    }
    for (std::size_t i = 0; i < src.size(); ++i)
        ASSERT_EQ(a[i], b[i]) << "element " << i << " of " << src.size() << " x=" << src[i]
                              << " mode " << rounding_name(r.rounding) << " scale " << r.scale.first
                              << "*" << r.scale.second;
}

TEST(QuantizeKernels, Avx512MatchesScalarBitExactly) {
    if (!have_avx512()) GTEST_SKIP() << "CPU has no AVX-512";
    std::mt19937 rng(1);
    const auto& fast = avx512_quantize_kernels();
    // Data exponents from the subnormal range to the top of FP32.
    for (int data_exp : {-160, -140, -126, -20, 0, 20, 100, 112}) {
        for (std::size_t n : kSizes) {
            const std::vector<float> src = awkward_values(n, data_exp, rng);
            ASSERT_EQ(scalar_quantize_kernels().max_abs_bits(src.data(), n),
                      fast.max_abs_bits(src.data(), n));
            for (Rounding mode : kModes) {
                // The exponent the rule gives (data scaled to ~2^15 magnitudes) and one 8 lower.
                for (int e : {data_exp, data_exp + 8}) {
                    const QuantizeRun r16{pow2(-e), 32767.0f, mode, 42, 1000 * n};
                    expect_same_quantize<std::int16_t>(fast, src, r16);
                    const QuantizeRun r8{pow2(-e), 127.0f, mode, 42, 1000 * n};
                    expect_same_quantize<std::int8_t>(fast, src, r8);
                }
            }
        }
    }
}

TEST(QuantizeKernels, StochasticRunAcrossThe32BitIndexBoundary) {
    if (!have_avx512()) GTEST_SKIP() << "CPU has no AVX-512";
    std::mt19937 rng(2);
    const std::vector<float> src = awkward_values(100, -10, rng);
    const QuantizeRun r{pow2(10), 32767.0f, Rounding::stochastic, 7, (std::uint64_t{1} << 32) - 37};
    expect_same_quantize<std::int16_t>(avx512_quantize_kernels(), src, r);
}

// A keep mask (the output of a fused ReLU): the scalar kernel gives the mantissas and maximum of
// relu_backward's select (src where keep > 0, else +0) quantized without a mask, NaN and Inf
// dropped where masked; AVX-512 gives the scalar's bits, streamed or not. keep holds positives,
// zeros of both signs, negatives and NaN.
TEST(QuantizeKernels, KeepMaskQuantizesTheMaskedValues) {
    std::mt19937 rng(4);
    std::uniform_int_distribution<int> pick(0, 4);
    const auto& ref = scalar_quantize_kernels();
    for (std::size_t n : kSizes) {
        std::vector<float> src = awkward_values(n, -10, rng), keep(n), masked(n);
        for (std::size_t i = 0; i < n; ++i) {
            const int p = pick(rng);
            keep[i] = p == 0 ? 0.0f : p == 1 ? -0.0f : p == 2 ? -1.5f : p == 3 ? NAN : 2.0f;
            if (!(keep[i] > 0.0f) && i % 3 == 0) src[i] = i % 2 ? NAN : -INFINITY;
            masked[i] = keep[i] > 0.0f ? src[i] : 0.0f;
        }
        ASSERT_EQ(ref.max_abs_bits_kept(src.data(), keep.data(), n),
                  ref.max_abs_bits(masked.data(), n));
        ASSERT_LT(ref.max_abs_bits_kept(src.data(), keep.data(), n), kNonFiniteBits);
        for (Rounding mode : kModes) {
            QuantizeRun r{pow2(10), 32767.0f, mode, 42, 1000 * n};
            std::vector<std::int16_t> want(n), got(n);
            ref.quantize_s16(masked.data(), want.data(), n, r);
            r.keep = keep.data();
            ASSERT_EQ(ref.quantize_s16(src.data(), got.data(), n, r),
                      ref.max_abs_bits(masked.data(), n));
            ASSERT_EQ(got, want) << "scalar, " << rounding_name(mode) << ", n=" << n;
            if (have_avx512()) {
                const auto& fast = avx512_quantize_kernels();
                ASSERT_EQ(fast.max_abs_bits_kept(src.data(), keep.data(), n),
                          ref.max_abs_bits(masked.data(), n));
                expect_same_quantize<std::int16_t>(fast, src, r);
                QuantizeRun r8 = r;
                r8.max_mantissa = 127.0f;
                r8.scale = pow2(2);
                expect_same_quantize<std::int8_t>(fast, src, r8);
            }
        }
    }
}

TEST(QuantizeKernels, DequantizeMatchesScalarBitExactly) {
    if (!have_avx512()) GTEST_SKIP() << "CPU has no AVX-512";
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> m16(-32767, 32767), m8(-127, 127);
    const auto &ref = scalar_quantize_kernels(), &fast = avx512_quantize_kernels();
    for (std::size_t n : kSizes) {
        std::vector<std::int16_t> s16(n);
        std::vector<std::int8_t> s8(n);
        for (auto& v : s16) v = static_cast<std::int16_t>(m16(rng));
        for (auto& v : s8) v = static_cast<std::int8_t>(m8(rng));
        s16[0] = 32767;
        s8[0] = -127;
        for (int e :
             {kMinExponent, -150, -127, -126, -30, 0, 30, kMaxExponent - 16, kMaxExponent - 8}) {
            std::vector<float> a(n + 1, 5.0f), b(n + 1, 5.0f);
            ref.dequantize_s16(s16.data(), a.data(), n, pow2(e));
            fast.dequantize_s16(s16.data(), b.data(), n, pow2(e));
            ASSERT_EQ(0, std::memcmp(a.data(), b.data(), (n + 1) * sizeof(float)))
                << "s16 n=" << n << " e=" << e;
            ref.dequantize_s8(s8.data(), a.data(), n, pow2(e));
            fast.dequantize_s8(s8.data(), b.data(), n, pow2(e));
            ASSERT_EQ(0, std::memcmp(a.data(), b.data(), (n + 1) * sizeof(float)))
                << "s8 n=" << n << " e=" << e;
        }
    }
}

TEST(QuantizeKernels, MaxAbsBitsFlagsNanAndInf) {
    for (const QuantizeKernels* k :
         {&scalar_quantize_kernels(), have_avx512() ? &avx512_quantize_kernels() : nullptr}) {
        if (k == nullptr) continue;
        for (float bad : {NAN, -NAN, INFINITY, -INFINITY}) {
            std::vector<float> v(37, 1.0f);
            v[33] = bad;
            EXPECT_GE(k->max_abs_bits(v.data(), v.size()), kNonFiniteBits) << k->name;
            // The quantizers report it too (their mantissas are then unspecified).
            std::vector<std::int16_t> q16(v.size());
            std::vector<std::int8_t> q8(v.size());
            const QuantizeRun r{pow2(-3), 32767.0f, Rounding::stochastic, 1, 0};
            EXPECT_GE(k->quantize_s16(v.data(), q16.data(), v.size(), r), kNonFiniteBits)
                << k->name;
            EXPECT_GE(k->quantize_s8(v.data(), q8.data(), v.size(), r), kNonFiniteBits)
                << k->name;
        }
        std::vector<float> v(37, -3.0f);
        EXPECT_EQ(std::bit_cast<float>(k->max_abs_bits(v.data(), v.size())), 3.0f) << k->name;
        EXPECT_EQ(k->max_abs_bits(v.data(), 0), 0u) << k->name;
    }
}

TEST(QuantizeKernels, Pow2FactorsAreExactOverTheWholeExponentRange) {
    for (int k = -2 * 163; k <= 2 * 163; ++k) {
        if (k < -252 || k > 254) continue;  // beyond what two FP32 factors can hold
        const Pow2 p = pow2(k);
        EXPECT_EQ(static_cast<double>(p.first) * p.second, std::ldexp(1.0, k)) << k;
    }
}

}  // namespace
}  // namespace dfp
