// Micro-kernel and packer tester: every fast context against its scalar twin at the same tile
// shape, on the same data, bit for bit (packed panels, overflow statistics, column sums, INT32 and
// FP32 tiles, overflow-event counts).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "base/isa.hpp"
#include "kernels/gemm_context.hpp"
#include "kernels/gemm_scalar.hpp"

namespace dfp::kernels {
namespace {

// Aligned storage for packed panels (the fast kernels use aligned loads).
template <typename T>
struct Aligned {
    explicit Aligned(size_t n) : v(n + 64 / sizeof(T)), size(n) {
        const auto addr = reinterpret_cast<uintptr_t>(v.data());
        p = v.data() + (64 - addr % 64) % 64 / sizeof(T);
    }
    std::vector<T> v;
    size_t size;
    T* p;
};

template <typename T>
std::vector<T> random_values(size_t n, int lo, int hi, std::mt19937& rng) {
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<T> x(n);
    for (auto& e : x) e = static_cast<T>(d(rng));
    return x;
}

template <typename T>
struct Packed {
    // sum_kp: K-groups per column sum (0: the whole block).
    Packed(const GemmContext<T>& ctx, int w, const std::vector<T>& src, int64_t ld, bool kcont,
           int64_t rows, int64_t kc, int shift, bool is_a, int64_t sum_kp = 0)
        : kp(ceil_div(kc, ctx.kg)),
          data(static_cast<size_t>(ceil_div(rows, w) * w * kp * ctx.kg)),
          stats(static_cast<size_t>(ceil_div(rows, w) * norm_levels(kp)), 0),
          sums(static_cast<size_t>(ceil_div(rows, w) * w * ceil_div(kp, sum_kp ? sum_kp : kp)), 0) {
        std::memset(data.p, 0x5a, data.size * sizeof(T));  // padding must be written
        (is_a ? ctx.pack_a : ctx.pack_b)(
            src.data(), ld, kcont, rows, kc, shift, data.p, sizeof(T) == 2 ? stats.data() : nullptr,
            sizeof(T) == 1 && !is_a ? sums.data() : nullptr, sum_kp ? sum_kp : kp);
    }
    int64_t kp;
    Aligned<T> data;
    std::vector<uint64_t> stats;
    std::vector<int32_t> sums;
};

template <typename T>
void expect_same_packing(const Packed<T>& x, const Packed<T>& y, size_t n, const char* what) {
    EXPECT_EQ(0, std::memcmp(x.data.p, y.data.p, n * sizeof(T)))
        << what << ": packed panels differ";
    EXPECT_EQ(x.stats, y.stats) << what << ": statistics differ";
    EXPECT_EQ(x.sums, y.sums) << what << ": column sums differ";
}

// Packers: all rows counts up to one panel and a bit beyond, K around the pair/chunk boundaries,
// both source layouts, shifts 0..2, data at the extremes (+-32767, -32768, zeros).
template <typename T>
void test_packers(const GemmContext<T>& fast, const GemmContext<T>& twin) {
    std::mt19937 rng(7);
    const int lo = sizeof(T) == 2 ? -32768 : -128, hi = sizeof(T) == 2 ? 32767 : 127;
    int cases = 0;
    for (bool is_a : {true, false}) {
        const int w = is_a ? fast.mr : fast.nr;
        for (int64_t rows : {int64_t{1}, int64_t{w - 1}, int64_t{w}, int64_t{w + 3}, int64_t{3 * w},
                             int64_t{4 * w + 5}, int64_t{9 * w}})
            for (int64_t kc : {1, 2, 3, 17, 31, 32, 33, 63, 64, 65, 129, 301, 512})
                for (bool kcont : {true, false})
                    for (int shift :
                         sizeof(T) == 2 ? std::vector<int>{0, 1, 2} : std::vector<int>{0}) {
                        if (rows <= 0) continue;
                        const int64_t ld = (kcont ? kc : rows) + 5;  // not a multiple of anything
                        const int64_t extent = (kcont ? rows : kc) * ld;
                        auto src = random_values<T>(static_cast<size_t>(extent), lo, hi, rng);
                        for (size_t e = 0; e < src.size(); e += 7) src[e] = static_cast<T>(hi);
                        for (size_t e = 3; e < src.size(); e += 11) src[e] = 0;
                        // Column sums over the whole block, and per run of 8 K-groups (the
                        // block-scaled chains of MXINT8).
                        for (int64_t sum_kp : {int64_t{0}, int64_t{8}}) {
                            if (sum_kp && (is_a || sizeof(T) == 2)) continue;
                            const Packed<T> x(fast, w, src, ld, kcont, rows, kc, shift, is_a,
                                              sum_kp);
                            const Packed<T> y(twin, w, src, ld, kcont, rows, kc, shift, is_a,
                                              sum_kp);
                            expect_same_packing(
                                x, y, static_cast<size_t>(ceil_div(rows, w) * w * x.kp * fast.kg),
                                is_a ? "A" : "B");
                            ++cases;
                        }
                    }
    }
    std::printf("pack %s %s %dx%d: %d cases PASS\n", sizeof(T) == 2 ? "s16" : "s8", fast.isa_name,
                fast.mr, fast.nr, cases);
}

enum class Out { f32, f32_count, s32, f32_narrow, s32_narrow };

// One micro-kernel call on packed panels with every mode and C pre-filled, fast vs twin.
template <typename T>
void test_ukernels(const GemmContext<T>& fast, const GemmContext<T>& twin, int lo, int hi,
                   const char* data_name) {
    std::mt19937 rng(11);
    const int mr = fast.mr, nr = fast.nr;
    int cases = 0;
    for (int64_t kc : {1, 2, 5, 16, 33, 64, 127, 256}) {
        auto a = random_values<T>(static_cast<size_t>(mr * kc), lo, hi, rng);
        auto b = random_values<T>(static_cast<size_t>(nr * kc), lo, hi, rng);
        const Packed<T> pa(twin, mr, a, kc, true, mr, kc, 0, true);
        const Packed<T> pb(twin, nr, b, kc, true, nr, kc, 0, false);
        std::vector<float> rs(static_cast<size_t>(mr)), cs(static_cast<size_t>(nr));
        for (int i = 0; i < mr; ++i) rs[static_cast<size_t>(i)] = std::ldexp(1.0f, i % 5 - 20);
        for (int j = 0; j < nr; ++j) cs[static_cast<size_t>(j)] = std::ldexp(1.0f, j % 3 - 10);
        // A bias of every size against the tile's values, zeros and negative zero included.
        std::vector<float> bias(static_cast<size_t>(nr));
        for (int j = 0; j < nr; ++j)
            bias[static_cast<size_t>(j)] = j % 4 == 0 ? (j % 8 == 0 ? 0.0f : -0.0f)
                                                      : std::ldexp(j % 2 ? 1.3f : -0.7f, j % 9 - 4);
        for (Out out : {Out::f32, Out::f32_count, Out::s32, Out::f32_narrow, Out::s32_narrow}) {
            const bool narrow = out == Out::f32_narrow || out == Out::s32_narrow;
            const Ukernel uf = out == Out::s32          ? fast.s32
                               : out == Out::f32        ? fast.f32
                               : out == Out::f32_count  ? fast.f32_count
                               : out == Out::f32_narrow ? fast.f32_narrow
                                                        : fast.s32_narrow;
            // A narrow variant's twin is the full reference kernel, compared on the narrow columns.
            const Ukernel ut = out == Out::s32 || out == Out::s32_narrow   ? twin.s32
                               : out == Out::f32 || out == Out::f32_narrow ? twin.f32
                                                                           : twin.f32_count;
            if (uf == nullptr) continue;
            const bool f32_out = out != Out::s32 && out != Out::s32_narrow;
            // chain >= kp: the block is one chain. The fast s16 kernels store every block's last
            // chain from registers, alone or added to the tile of the chains before it.
            for (int64_t chain : {int64_t{1}, int64_t{3}, int64_t{8}, pa.kp, pa.kp + 5})
                for (int variant = 0; variant < (f32_out ? 8 : 2); ++variant) {
                    const bool load_c = variant & 1, with_bias = variant & 2, relu = variant & 4;
                    const int64_t ldc = nr + 3;
                    std::vector<int32_t> cf(static_cast<size_t>(mr * ldc)), ct;
                    for (size_t e = 0; e < cf.size(); ++e) {
                        const float f = static_cast<float>(e % 17) - 8.5f;
                        if (out == Out::s32)
                            cf[e] = static_cast<int32_t>(e * 2654435761u);
                        else
                            std::memcpy(&cf[e], &f, sizeof f);
                    }
                    ct = cf;
                    int64_t ef = 0, et = 0;
                    UkernelArgs args;
                    args.kp = pa.kp;
                    args.chain = chain;
                    args.a = pa.data.p;
                    args.b = pb.data.p;
                    args.b_col_sums = pb.sums.data();
                    args.ldc = ldc;
                    args.row_scale = rs.data();
                    args.col_scale = cs.data();
                    args.load_c = load_c;
                    args.bias = with_bias ? bias.data() : nullptr;
                    args.relu = relu;
                    args.c = cf.data();
                    args.events = &ef;
                    uf(args);
                    args.c = ct.data();
                    args.events = &et;
                    ut(args);
                    if (narrow)  // only the first nr_narrow columns are the narrow kernel's
                        for (int64_t i = 0; i < mr; ++i)
                            for (int64_t j = fast.nr_narrow; j < ldc; ++j)
                                cf[static_cast<size_t>(i * ldc + j)] =
                                    ct[static_cast<size_t>(i * ldc + j)];
                    EXPECT_EQ(cf, ct) << fast.isa_name << " kc=" << kc << " chain=" << chain
                                      << " mode=" << static_cast<int>(out) << " load_c=" << load_c
                                      << " bias=" << with_bias << " relu=" << relu;
                    EXPECT_EQ(ef, et) << "overflow events differ, kc=" << kc << " chain=" << chain;
                    ++cases;
                }
        }
    }
    std::printf("ukernel %s %s %dx%d %s: %d cases PASS\n", sizeof(T) == 2 ? "s16" : "s8",
                fast.isa_name, mr, nr, data_name, cases);
}

// The block-scaled micro-kernels (one chain per exponent block, each with its own column sums and
// scales), full and narrow, against the twin's on the same panels.
void test_blocked_ukernels(const GemmContext<int8_t>& fast, const GemmContext<int8_t>& twin) {
    std::mt19937 rng(13);
    const int mr = fast.mr, nr = fast.nr;
    int cases = 0;
    for (int64_t kc : {4, 33, 128, 200, 1024})
        for (int64_t chain : {1, 2, 8, 32}) {
            auto a = random_values<int8_t>(static_cast<size_t>(mr * kc), -127, 127, rng);
            auto b = random_values<int8_t>(static_cast<size_t>(nr * kc), -127, 127, rng);
            for (size_t e = 0; e < a.size(); e += 5) a[e] = 127;
            for (size_t e = 2; e < b.size(); e += 9) b[e] = -127;
            const Packed<int8_t> pa(twin, mr, a, kc, true, mr, kc, 0, true);
            const Packed<int8_t> pb(twin, nr, b, kc, true, nr, kc, 0, false, chain);
            const int64_t runs = ceil_div(pa.kp, chain);
            std::vector<float> as(static_cast<size_t>(runs * mr)),
                bs(static_cast<size_t>(runs * nr));
            std::uniform_int_distribution<int> e(-40, 20);
            for (auto& x : as) x = std::ldexp(1.0f, e(rng));
            for (auto& x : bs) x = std::ldexp(1.0f, e(rng));
            const std::vector<float> ones(static_cast<size_t>(nr), 1.0f);
            for (bool narrow : {false, true})
                for (bool load_c : {false, true}) {
                    const int64_t ldc = nr + 3;
                    std::vector<float> cf(static_cast<size_t>(mr * ldc));
                    for (size_t i = 0; i < cf.size(); ++i)
                        cf[i] = static_cast<float>(i % 17) - 8.5f;
                    std::vector<float> ct = cf;
                    UkernelArgs args;
                    args.kp = pa.kp;
                    args.chain = chain;
                    args.a = pa.data.p;
                    args.b = pb.data.p;
                    args.b_col_sums = pb.sums.data();
                    args.a_chain_scale = as.data();
                    args.b_chain_scale = bs.data();
                    args.ldc = ldc;
                    args.row_scale = ones.data();
                    args.col_scale = ones.data();
                    args.load_c = load_c;
                    // The epilogue's bias, with and without the old C.
                    args.bias = chain == 2 ? bs.data() : nullptr;
                    args.relu = chain == 8;
                    args.c = cf.data();
                    (narrow ? fast.f32_blocked_narrow : fast.f32_blocked)(args);
                    args.c = ct.data();
                    twin.f32_blocked(args);
                    if (narrow)
                        for (int64_t i = 0; i < mr; ++i)
                            for (int64_t j = fast.nr_narrow; j < ldc; ++j)
                                cf[static_cast<size_t>(i * ldc + j)] =
                                    ct[static_cast<size_t>(i * ldc + j)];
                    EXPECT_EQ(0, std::memcmp(cf.data(), ct.data(), cf.size() * sizeof(float)))
                        << fast.isa_name << " kc=" << kc << " chain=" << chain
                        << " narrow=" << narrow << " load_c=" << load_c;
                    ++cases;
                }
        }
    std::printf("ukernel s8 blocked %s %dx%d: %d cases PASS\n", fast.isa_name, mr, nr, cases);
}

// The in-place A path (GemmContext::row_stats, f32_rows): on MR rows read where they lie, the
// statistics and the FP32 tile of the same context's packer and f32 kernel on the packed panel, bit
// for bit (the packed path is itself checked against the twin above). Rows with a leading
// dimension that is no multiple of anything, K around the 16-pair chunks and up to the 256 pairs
// of a block, data at the extremes (-32768 included: its pair sum 2^31 is exact only unsigned).
void test_in_place_a(const GemmContext<int16_t>& ctx) {
    std::mt19937 rng(13);
    const int mr = ctx.mr, nr = ctx.nr;
    int cases = 0;
    for (auto [lo, hi] : {std::pair{-300, 300}, std::pair{-32768, 32767}, std::pair{32700, 32767}})
        for (int64_t kp : {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 255, 256}) {
            const int64_t kc = 2 * kp, ld = kc + 13;
            auto a = random_values<int16_t>(static_cast<size_t>(mr * ld), lo, hi, rng);
            for (size_t e = 5; e < a.size(); e += 9) a[e] = 0;
            auto b = random_values<int16_t>(static_cast<size_t>(nr * kc), -32767, 32767, rng);
            const Packed<int16_t> pa(ctx, mr, a, ld, true, mr, kc, 0, true);
            const Packed<int16_t> pb(ctx, nr, b, kc, true, nr, kc, 0, false);
            std::vector<uint64_t> stats(static_cast<size_t>(norm_levels(kp)), 0);
            ctx.row_stats(a.data(), ld, kp, stats.data());
            EXPECT_EQ(stats, pa.stats)
                << ctx.isa_name << " row statistics, kp=" << kp << " data " << lo << ".." << hi;
            std::vector<float> rs(static_cast<size_t>(mr)), cs(static_cast<size_t>(nr));
            for (int i = 0; i < mr; ++i) rs[static_cast<size_t>(i)] = std::ldexp(1.0f, i % 5 - 20);
            for (int j = 0; j < nr; ++j) cs[static_cast<size_t>(j)] = std::ldexp(1.0f, j % 3 - 10);
            for (bool narrow : {false, true})
                for (int64_t chain : {int64_t{1}, int64_t{3}, int64_t{16}, kp, 2 * kp})
                    for (bool load_c : {false, true}) {
                        const int64_t ldc = nr + 3;
                        std::vector<float> packed(static_cast<size_t>(mr * ldc));
                        for (size_t e = 0; e < packed.size(); ++e)
                            packed[e] = static_cast<float>(e % 17) - 8.5f;
                        std::vector<float> in_place = packed;
                        UkernelArgs args;
                        args.kp = kp;
                        args.chain = chain;
                        args.b = pb.data.p;
                        args.ldc = ldc;
                        args.row_scale = rs.data();
                        args.col_scale = cs.data();
                        args.load_c = load_c;
                        // The epilogue's bias and ReLU too.
                        args.bias = chain == 3 || chain == 2 * kp ? cs.data() : nullptr;
                        args.relu = chain == 1 || chain == 3 || chain == 2 * kp;
                        args.a = pa.data.p;
                        args.c = packed.data();
                        (narrow ? ctx.f32_narrow : ctx.f32)(args);
                        args.a = a.data();
                        args.a_row_stride = ld * 2;
                        args.c = in_place.data();
                        (narrow ? ctx.f32_rows_narrow : ctx.f32_rows)(args);
                        EXPECT_EQ(in_place, packed)
                            << ctx.isa_name << " in-place A, kp=" << kp << " chain=" << chain
                            << " narrow=" << narrow << " load_c=" << load_c;
                        ++cases;
                    }
        }
    std::printf("in-place A s16 %s %dx%d: %d cases PASS\n", ctx.isa_name, mr, nr, cases);
}

std::vector<Isa> fast_isas() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::avx2, Isa::avx512_vnni})
        if (isa <= cpu_isa()) out.push_back(isa);
    return out;
}

TEST(GemmKernels, S16PackersMatchTheReference) {
    for (Isa isa : fast_isas()) {
        const GemmContext<int16_t>* fast = s16_context(isa);
        if (fast == nullptr) continue;
        test_packers(*fast, *s16_scalar_twin(fast->mr, fast->nr));
    }
}

TEST(GemmKernels, S8PackersMatchTheReference) {
    for (Isa isa : fast_isas()) {
        const GemmContext<int8_t>* fast = s8_context(isa);
        if (fast == nullptr) continue;
        test_packers(*fast, *s8_scalar_twin(fast->mr, fast->nr));
    }
}

TEST(GemmKernels, S16MicroKernelsMatchTheReference) {
    for (Isa isa : fast_isas()) {
        const GemmContext<int16_t>* fast = s16_context(isa);
        if (fast == nullptr) continue;
        const auto& twin = *s16_scalar_twin(fast->mr, fast->nr);
        test_ukernels(*fast, twin, -300, 300, "small");
        // Full-range data with long chains: wraps in f32 mode (identically), saturates in count
        // mode.
        test_ukernels(*fast, twin, -32767, 32767, "full-range");
        test_ukernels(*fast, twin, 32700, 32767, "positive-extreme");
    }
}

TEST(GemmKernels, S16InPlaceAMatchesThePackedPath) {
    int contexts = 0;
    for (Isa isa : fast_isas()) {
        const GemmContext<int16_t>* ctx = s16_context(isa);
        if (ctx == nullptr || ctx->f32_rows == nullptr) continue;
        test_in_place_a(*ctx);
        ++contexts;
    }
    if (contexts == 0) GTEST_SKIP() << "no context on this CPU reads A in place";
}

TEST(GemmKernels, S8MicroKernelsMatchTheReference) {
    for (Isa isa : fast_isas()) {
        const GemmContext<int8_t>* fast = s8_context(isa);
        if (fast == nullptr) continue;
        test_ukernels(*fast, *s8_scalar_twin(fast->mr, fast->nr), -128, 127, "full-range");
        if (fast->f32_blocked) test_blocked_ukernels(*fast, *s8_scalar_twin(fast->mr, fast->nr));
    }
}

// The twin is also checked against first principles: each level bounds the block maxima from
// above, by at most 2^8 per pair.
TEST(GemmKernels, NormLevelsBoundBlockMaxima) {
    // One lane, 5 pairs: squares 1+4, 9+16, 0+0, 32767^2*2, 1+0.
    const int16_t panel[] = {1, 2, 3, 4, 0, 0, 32767, 32767, 1, 0};
    uint64_t levels[4] = {};
    ref_norm_levels(panel, 1, 5, levels);
    const uint64_t big = 2ull * 32767 * 32767;
    const uint64_t exact[4] = {big, big, big + 5 + 25,
                               big + 5 + 25 + 1};  // blocks 1, 2, 4, 8 pairs
    const uint64_t pairs[4] = {1, 2, 4, 5};
    for (int l = 0; l < 4; ++l) {
        EXPECT_GE(levels[l], exact[l]) << "level " << l;
        EXPECT_LE(levels[l], exact[l] + 256 * pairs[l]) << "level " << l;
    }
    EXPECT_EQ(levels[0], ((big >> 8) + 1) << 8);
    EXPECT_LE(levels[0], 2147483647u);  // a pair of 32767s alone is provably safe
    EXPECT_EQ(norm_levels(5), 4);
    EXPECT_EQ(norm_levels(1), 1);
    EXPECT_EQ(norm_levels(8), 4);
}

TEST(GemmKernels, RoundShiftIsSymmetricToNearest) {
    EXPECT_EQ(round_shift_s16(5, 1), 3);  // 2.5 -> 3 (ties away from zero)
    EXPECT_EQ(round_shift_s16(-5, 1), -3);
    EXPECT_EQ(round_shift_s16(-6, 2), -2);  // -1.5 -> -2
    EXPECT_EQ(round_shift_s16(32767, 2), 8192);
    EXPECT_EQ(round_shift_s16(-32768, 1), -16384);
    EXPECT_EQ(round_shift_s16(7, 0), 7);
}

}  // namespace
}  // namespace dfp::kernels
