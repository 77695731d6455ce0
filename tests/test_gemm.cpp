// The GEMM through its public interface, on every ISA this CPU has: INT32 results bit-exact against
// an exact reference (awkward shapes, all transposes, edges of every micro-kernel tile), FP32
// results against a double-precision reference within FP32 rounding, the overflow rule at the
// extremes, and the refusals.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "base/isa.hpp"
#include "kernels/gemm.hpp"
#include "kernels/gemm_context.hpp"
#include "kernels/gemm_ref.hpp"
#include "kernels/gemm_scalar.hpp"

namespace dfp::kernels {
namespace {

std::vector<Isa> isas() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512_vnni})
        if (isa <= cpu_isa()) out.push_back(isa);
    return out;
}

// A stored matrix for op(X) of r x c: as is r x c, transposed c x r; ld padded by `pad`.
template <typename T>
struct Operand {
    Operand(int64_t r, int64_t c, Op op, int64_t pad, int lo, int hi, std::mt19937& rng)
        : rows(op == Op::n ? r : c),
          ld((op == Op::n ? c : r) + pad),
          data(static_cast<size_t>(rows * ld)) {
        std::uniform_int_distribution<int> d(lo, hi);
        for (auto& x : data) x = static_cast<T>(d(rng));
        mat = {data.data(), ld, op, {}};
    }
    int64_t rows, ld;
    std::vector<T> data;
    DfpMatrix<T> mat;
};

// Normal data quantized by the paper's rule (E_s = floor(log2 max|f|) - 14, round, clamp 32767).
std::vector<int16_t> normal_s16(size_t n, std::mt19937& rng, int* exponent) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> f(n);
    float mx = 0;
    for (auto& x : f) mx = std::max(mx, std::abs(x = d(rng)));
    *exponent = static_cast<int>(std::floor(std::log2(mx))) - 14;
    std::vector<int16_t> out(n);
    for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<int16_t>(
            std::clamp(std::nearbyint(std::ldexp(f[i], -*exponent)), -32767.0f, 32767.0f));
    return out;
}

template <typename T>
void expect_s32_exact(int64_t m, int64_t n, int64_t k, const DfpMatrix<T>& a, const DfpMatrix<T>& b,
                      Isa isa, int threads) {
    std::vector<int32_t> c(static_cast<size_t>(m * n), -7);
    GemmOptions opt;
    opt.isa = isa;
    opt.threads = threads;
    opt.input_shift = 0;
    GemmReport rep;
    if constexpr (sizeof(T) == 2)
        rep = gemm_s16s16s32(m, n, k, a, b, c.data(), n, opt);
    else
        rep = gemm_s8s8s32(m, n, k, a, b, c.data(), n, opt);
    const std::vector<int64_t> ref = ref_gemm_exact(m, n, k, a, b);
    int64_t bad = 0, nonzero = 0;
    for (size_t e = 0; e < c.size(); ++e) {
        bad += c[e] != ref[e];
        nonzero += ref[e] != 0;
    }
    EXPECT_EQ(bad, 0) << rep.kernel << " m=" << m << " n=" << n << " k=" << k;
    EXPECT_GT(nonzero, 0) << "zero trust: the reference is all zeros";
}

const char* op_name(Op op) {
    return op == Op::n ? "N" : "T";
}

TEST(Gemm, S16Int32ExactOnAwkwardShapesAndTransposes) {
    std::mt19937 rng(1);
    const int64_t shapes[][3] = {{1, 1, 1},     {7, 31, 33},   {33, 7, 1000},  {1000, 33, 7},
                                 {31, 1000, 1}, {1, 1000, 31}, {33, 33, 1000}, {65, 97, 515}};
    for (Isa isa : isas())
        for (const auto& s : shapes)
            for (Op oa : {Op::n, Op::t})
                for (Op ob : {Op::n, Op::t}) {
                    const int64_t m = s[0], n = s[1], k = s[2];
                    // |x| <= 1000: K = 1000 keeps the Cauchy-Schwarz proof of the INT32 result.
                    Operand<int16_t> a(m, k, oa, 3, -1000, 1000, rng),
                        b(k, n, ob, 5, -1000, 1000, rng);
                    expect_s32_exact(m, n, k, a.mat, b.mat, isa, 2);
                    std::printf("s16s16s32 %-11s %s%s m=%4ld n=%4ld k=%4ld PASS\n", isa_name(isa),
                                op_name(oa), op_name(ob), m, n, k);
                }
}

TEST(Gemm, S8Int32ExactOnAwkwardShapesAndTransposes) {
    std::mt19937 rng(2);
    const int64_t shapes[][3] = {
        {1, 1, 1}, {7, 31, 33}, {33, 7, 1000}, {1000, 33, 7}, {65, 97, 1030}};
    for (Isa isa : isas())
        for (const auto& s : shapes)
            for (Op oa : {Op::n, Op::t})
                for (Op ob : {Op::n, Op::t}) {
                    Operand<int8_t> a(s[0], s[2], oa, 1, -128, 127, rng),
                        b(s[2], s[1], ob, 2, -128, 127, rng);
                    expect_s32_exact(s[0], s[1], s[2], a.mat, b.mat, isa, 2);
                    std::printf("s8s8s32 %-11s %s%s m=%4ld n=%4ld k=%4ld PASS\n", isa_name(isa),
                                op_name(oa), op_name(ob), s[0], s[1], s[2]);
                }
}

// Every m <= MR, n <= NR of each ISA's tile (the edge path), K around pairs and blocks.
TEST(Gemm, EveryTileEdgeOfEveryKernel) {
    std::mt19937 rng(3);
    for (Isa isa : isas()) {
        const GemmContext<int16_t>& ctx = *s16_context(isa == Isa::avx512 ? Isa::avx2 : isa);
        for (int64_t k : {int64_t{1}, int64_t{2}, int64_t{7}, ctx.kc + 3}) {
            for (int64_t m = 1; m <= ctx.mr; ++m)
                for (int64_t n = 1; n <= ctx.nr; ++n) {
                    Operand<int16_t> a(m, k, Op::n, 0, -32767, 32767, rng),
                        b(k, n, Op::n, 0, 1, 3, rng);
                    expect_s32_exact(m, n, k, a.mat, b.mat, isa, 1);
                }
            std::printf("s16 tile edges %-11s %dx%d k=%ld PASS\n", isa_name(isa), ctx.mr, ctx.nr,
                        k);
        }
    }
}

TEST(Gemm, EveryTileEdgeOfEveryS8Kernel) {
    std::mt19937 rng(12);
    for (Isa isa : isas()) {
        const GemmContext<int8_t>* ctx = s8_context(isa);
        if (ctx == nullptr) continue;  // this ISA runs the next one down
        for (int64_t k : {int64_t{1}, int64_t{5}, ctx->kc + 3}) {
            for (int64_t m = 1; m <= ctx->mr; ++m)
                for (int64_t n = 1; n <= ctx->nr; ++n) {
                    Operand<int8_t> a(m, k, Op::t, 1, -128, 127, rng),
                        b(k, n, Op::n, 0, 1, 127, rng);
                    expect_s32_exact(m, n, k, a.mat, b.mat, isa, 1);
                }
            std::printf("s8 tile edges %-11s %dx%d k=%ld PASS\n", isa_name(isa), ctx->mr, ctx->nr,
                        k);
        }
    }
}

// FP32 output against double: the INT32 chain sums are exact, so the only errors are FP32
// conversions and additions: at most (chains + KC blocks + 1) roundings of sum_k |a_ik b_kj|.
void expect_f32_close(int64_t m, int64_t n, int64_t k, const DfpMatrix<int16_t>& a,
                      const DfpMatrix<int16_t>& b, const std::vector<float>& c,
                      const GemmReport& rep, const char* what) {
    const std::vector<double> ref = ref_gemm_scaled(m, n, k, a, b);
    DfpMatrix<int16_t> aa = a, ba = b;
    std::vector<int16_t> abs_a(a.data, a.data + (a.op == Op::n ? m : k) * a.ld);
    std::vector<int16_t> abs_b(b.data, b.data + (b.op == Op::n ? k : n) * b.ld);
    for (auto& x : abs_a) x = static_cast<int16_t>(std::abs(x));
    for (auto& x : abs_b) x = static_cast<int16_t>(std::abs(x));
    aa.data = abs_a.data();
    ba.data = abs_b.data();
    const std::vector<double> mag = ref_gemm_scaled(m, n, k, aa, ba);
    const double chains =
        std::ceil(static_cast<double>(k) / 2 / std::max<int64_t>(1, rep.min_chain_pairs));
    const double roundings = chains + std::ceil(static_cast<double>(k) / 64) + 2;
    double worst = 0;
    int64_t nonzero = 0;
    for (size_t e = 0; e < c.size(); ++e) {
        const double tol = roundings * std::ldexp(1.0, -24) * mag[e];
        worst = std::max(worst, std::abs(c[e] - ref[e]) / std::max(tol, 1e-300));
        nonzero += ref[e] != 0;
        ASSERT_LE(std::abs(c[e] - ref[e]), tol) << what << " " << rep.kernel << " at " << e;
    }
    EXPECT_GT(nonzero, 0);
    std::printf("s16s16f32 %-28s %s m=%ld n=%ld k=%ld min chain %ld pairs, error/bound %.3f PASS\n",
                rep.kernel.c_str(), what, m, n, k, rep.min_chain_pairs, worst);
}

TEST(Gemm, S16Fp32MatchesDoubleOnNormalData) {
    std::mt19937 rng(4);
    for (Isa isa : isas())
        for (Op oa : {Op::n, Op::t})
            for (Op ob : {Op::n, Op::t}) {
                const int64_t m = 45, n = 70, k = 1000;
                int ea = 0, eb = 0;
                std::vector<int16_t> av = normal_s16(static_cast<size_t>(m * k), rng, &ea);
                std::vector<int16_t> bv = normal_s16(static_cast<size_t>(k * n), rng, &eb);
                std::vector<int> row_e(static_cast<size_t>(m)), col_e(static_cast<size_t>(n));
                for (int64_t i = 0; i < m; ++i)
                    row_e[static_cast<size_t>(i)] = ea + static_cast<int>(i % 3);
                for (int64_t j = 0; j < n; ++j)
                    col_e[static_cast<size_t>(j)] = eb - static_cast<int>(j % 4);
                const DfpMatrix<int16_t> a{av.data(), oa == Op::n ? k : m, oa, row_e};
                const DfpMatrix<int16_t> b{bv.data(), ob == Op::n ? n : k, ob, col_e};
                std::vector<float> c(static_cast<size_t>(m * n));
                GemmOptions opt;
                opt.isa = isa;
                opt.input_shift = 0;
                const GemmReport rep = gemm_s16s16f32(m, n, k, a, b, c.data(), n, opt);
                EXPECT_GE(rep.min_chain_pairs, 4) << "15-bit normal data should allow chains";
                expect_f32_close(
                    m, n, k, a, b, c, rep,
                    oa == Op::n ? (ob == Op::n ? "NN" : "NT") : (ob == Op::n ? "TN" : "TT"));
            }
}

// With a shift s the product is that of the rounded mantissas at exponent + s, exactly.
TEST(Gemm, InputShiftEqualsPreRoundedInputs) {
    std::mt19937 rng(5);
    const int64_t m = 40, n = 50, k = 777;
    for (Isa isa : isas())
        for (int shift : {1, 2, 3}) {
            int ea = 0, eb = 0;
            std::vector<int16_t> av = normal_s16(static_cast<size_t>(m * k), rng, &ea);
            std::vector<int16_t> bv = normal_s16(static_cast<size_t>(k * n), rng, &eb);
            std::vector<int16_t> as = av, bs = bv;
            for (auto& x : as) x = round_shift_s16(x, shift);
            for (auto& x : bs) x = round_shift_s16(x, shift);
            const int eas = ea + shift, ebs = eb + shift;
            const DfpMatrix<int16_t> a{av.data(), k, Op::n, {&ea, 1}},
                b{bv.data(), n, Op::n, {&eb, 1}};
            const DfpMatrix<int16_t> a2{as.data(), k, Op::n, {&eas, 1}},
                b2{bs.data(), n, Op::n, {&ebs, 1}};
            std::vector<float> c(static_cast<size_t>(m * n));
            GemmOptions opt;
            opt.isa = isa;
            opt.input_shift = shift;
            const GemmReport rep = gemm_s16s16f32(m, n, k, a, b, c.data(), n, opt);
            expect_f32_close(m, n, k, a2, b2, c, rep, "shifted");
        }
}

// The extremes: all mantissas +-32767, K in the thousands. Every pair of products is 2^31 - 2^17
// in magnitude, so only chains of one pair are safe; the result must still be right.
TEST(Gemm, ExtremeInputsNeverWrap) {
    std::mt19937 rng(6);
    const int64_t m = 19, n = 37, k = 4099;
    for (Isa isa : isas())
        for (int pattern = 0; pattern < 3; ++pattern) {
            std::vector<int16_t> av(static_cast<size_t>(m * k)), bv(static_cast<size_t>(k * n));
            std::bernoulli_distribution coin(0.5);
            for (auto& x : av) x = pattern == 2 && coin(rng) ? -32767 : 32767;
            for (auto& x : bv)
                x = pattern == 1 ? -32767 : (pattern == 2 && coin(rng) ? -32767 : 32767);
            int e = -28;
            const DfpMatrix<int16_t> a{av.data(), k, Op::n, {&e, 1}},
                b{bv.data(), n, Op::n, {&e, 1}};
            std::vector<float> c(static_cast<size_t>(m * n));
            GemmOptions opt;
            opt.isa = isa;
            opt.input_shift = 0;
            const GemmReport rep = gemm_s16s16f32(m, n, k, a, b, c.data(), n, opt);
            if (pattern < 2) {
                EXPECT_EQ(rep.min_chain_pairs, 1);
            }
            expect_f32_close(m, n, k, a, b, c, rep,
                             pattern == 0   ? "all +32767"
                             : pattern == 1 ? "+32767 x -32767"
                                            : "random +-32767");
            // The same through the transposed forms (the packers for the other layouts).
            std::vector<int16_t> avt(av.size()), bvt(bv.size());
            for (int64_t i = 0; i < m; ++i)
                for (int64_t kk = 0; kk < k; ++kk)
                    avt[static_cast<size_t>(kk * m + i)] = av[static_cast<size_t>(i * k + kk)];
            for (int64_t kk = 0; kk < k; ++kk)
                for (int64_t j = 0; j < n; ++j)
                    bvt[static_cast<size_t>(j * k + kk)] = bv[static_cast<size_t>(kk * n + j)];
            const DfpMatrix<int16_t> at2{avt.data(), m, Op::t, {&e, 1}},
                bt2{bvt.data(), k, Op::t, {&e, 1}};
            std::vector<float> ct(c.size());
            gemm_s16s16f32(m, n, k, at2, bt2, ct.data(), n, opt);
            EXPECT_EQ(c, ct) << "TT differs from NN";
        }
}

TEST(Gemm, CountModeCountsSaturatedChains) {
    // All +32767, chains of 64 pairs: every chain saturates (64 * 2 * 32767^2 > 2^31).
    const int64_t m = 9, n = 33, k = 1024;
    std::vector<int16_t> av(static_cast<size_t>(m * k), 32767),
        bv(static_cast<size_t>(k * n), 32767);
    const DfpMatrix<int16_t> a{av.data(), k, Op::n, {}}, b{bv.data(), n, Op::n, {}};
    std::vector<int64_t> counts;
    for (Isa isa : isas()) {
        std::vector<float> c(static_cast<size_t>(m * n));
        GemmOptions opt;
        opt.isa = isa;
        opt.input_shift = 0;
        opt.overflow = OverflowMode::count;
        opt.max_chain_pairs = 64;
        const GemmReport rep = gemm_s16s16f32(m, n, k, a, b, c.data(), n, opt);
        EXPECT_EQ(rep.overflow_events, m * n * (k / 2 / 64)) << rep.kernel;
        // Saturated chains give INT32_MAX each: the result is visibly wrong, as in the paper's
        // code.
        EXPECT_FLOAT_EQ(c[0], static_cast<float>(k / 2 / 64) * 2147483647.0f);
        // Small data: no events.
        std::vector<int16_t> small(av.size(), 3);
        const DfpMatrix<int16_t> sa{small.data(), k, Op::n, {}}, sb{small.data(), n, Op::n, {}};
        EXPECT_EQ(gemm_s16s16f32(m, n, k, sa, sb, c.data(), n, opt).overflow_events, 0);
        std::printf("count mode %-28s events %ld PASS\n", rep.kernel.c_str(), rep.overflow_events);
    }
}

// A block source that copies from a stored matrix: the GEMM must give the same bits as when it
// reads that matrix itself (same packed panels, same chains), for every op, ISA, thread count,
// K spanning several (balanced) K blocks, B resident or not, and accumulation.
struct StoredCopy {
    const int16_t* data;
    int64_t ld;
    static void fill(const void* ctx, int64_t r0, int64_t rows, int64_t c0, int64_t cols,
                     int16_t* dst, int64_t ld) {
        const auto* s = static_cast<const StoredCopy*>(ctx);
        for (int64_t r = 0; r < rows; ++r) {
            std::memcpy(dst + r * ld, s->data + (r0 + r) * s->ld + c0,
                        sizeof(int16_t) * static_cast<size_t>(cols));
            // What lies past the columns is the GEMM's to set: leave there what it must not read
            // (-32768 fails the overflow rule's proof, and would make the statistics wrong).
            std::fill(dst + r * ld + cols, dst + (r + 1) * ld, int16_t{-32768});
        }
    }
    // x as the GEMM sees it when this copy of its stored matrix fills it block by block.
    DfpMatrix<int16_t> source_of(DfpMatrix<int16_t> x) const {
        x.data = nullptr;
        x.source = {&StoredCopy::fill, this};
        return x;
    }
};

TEST(Gemm, BlockSourceGivesTheBitsOfTheStoredMatrix) {
    std::mt19937 rng(11);
    const int64_t shapes[][3] = {{37, 29, 1100}, {129, 70, 577}, {8, 300, 64}, {61, 33, 2051}};
    for (Isa isa : isas())
        for (const auto& s : shapes)
            for (Op oa : {Op::n, Op::t})
                for (Op ob : {Op::n, Op::t})
                    for (int threads : {1, 2}) {
                        const int64_t m = s[0], n = s[1], k = s[2];
                        int ea = 0, eb = 0;
                        std::vector<int16_t> av = normal_s16(static_cast<size_t>(m * k), rng, &ea);
                        std::vector<int16_t> bv = normal_s16(static_cast<size_t>(k * n), rng, &eb);
                        const std::vector<int> ev{ea}, fv{eb};
                        const DfpMatrix<int16_t> a{av.data(), oa == Op::n ? k : m, oa, ev};
                        const DfpMatrix<int16_t> b{bv.data(), ob == Op::n ? n : k, ob, fv};
                        const StoredCopy ca{a.data, a.ld}, cb{b.data, b.ld};
                        const DfpMatrix<int16_t> sa = ca.source_of(a), sb = cb.source_of(b);
                        GemmOptions opt;
                        opt.isa = isa;
                        opt.threads = threads;
                        for (bool accumulate : {false, true}) {
                            opt.accumulate = accumulate;
                            std::vector<float> c0(static_cast<size_t>(m * n), 0.5f);
                            std::vector<float> c1 = c0, c2 = c0;
                            gemm_s16s16f32(m, n, k, a, b, c0.data(), n, opt);
                            gemm_s16s16f32(m, n, k, sa, b, c1.data(), n, opt);
                            gemm_s16s16f32(m, n, k, a, sb, c2.data(), n, opt);
                            ASSERT_EQ(std::memcmp(c0.data(), c1.data(), c0.size() * 4), 0)
                                << isa_name(isa) << " A sourced m=" << m << " n=" << n
                                << " k=" << k;
                            ASSERT_EQ(std::memcmp(c0.data(), c2.data(), c0.size() * 4), 0)
                                << isa_name(isa) << " B sourced m=" << m << " n=" << n
                                << " k=" << k;
                        }
                        std::printf("block source %-11s %s%s m=%4ld n=%4ld k=%4ld t=%d PASS\n",
                                    isa_name(isa), op_name(oa), op_name(ob), m, n, k, threads);
                    }
    // Raw INT32 output proves its bound from the whole stored matrix: a source is refused.
    std::vector<int16_t> v(64, 1);
    const StoredCopy cv{v.data(), 8};
    DfpMatrix<int16_t> src{nullptr, 8, Op::n, {}};
    src.source = {&StoredCopy::fill, &cv};
    const DfpMatrix<int16_t> plain{v.data(), 8, Op::n, {}};
    std::vector<int32_t> c(64);
    EXPECT_THROW(gemm_s16s16s32(8, 8, 8, src, plain, c.data(), 8, {}), Error);
}

// A as stored with an even K, or filled by a block source with any K (odd: into rows of whole
// pairs), is read in place (GemmContext::f32_rows) except for a last partial micro-panel; stored
// transposed, or stored with an odd K, it is packed. Both give the same bits: the in-place
// statistics are the packed ones, so the chains and the order of the FP32 sums are the same. Shapes
// with partial panels, several A and K blocks, narrow and edge tiles; A with ld = K and ld > K, as
// stored and filled by a block source; extreme data, where the chains are short; adding to C and
// not. With B filled too, A's fill buffer must not be read in place (B's fill reuses it).
TEST(Gemm, InPlaceAGivesTheBitsOfPackedA) {
    std::mt19937 rng(12);
    const GemmContext<int16_t>* ctx = s16_context(active_isa());
    const bool supported = ctx != nullptr && ctx->f32_rows != nullptr;
    const int64_t shapes[][3] = {{37, 64, 1100}, {130, 33, 576},  {8, 300, 64},
                                 {1, 16, 2},     {301, 64, 2050}, {64, 48, 30},
                                 {37, 64, 147},  {9, 40, 1},      {130, 33, 1101}};
    for (const auto& s : shapes)
        for (int64_t pad : {0, 5})
            for (int data : {0, 1, 2})  // normal, A extreme, A ones and B extreme
                for (int threads : {1, 2}) {
                    const int64_t m = s[0], n = s[1], k = s[2], lda = k + pad;
                    int ea = 0, eb = 0;
                    std::vector<int16_t> av = normal_s16(static_cast<size_t>(m * lda), rng, &ea);
                    std::vector<int16_t> bv = normal_s16(static_cast<size_t>(k * n), rng, &eb);
                    if (data == 1)
                        for (size_t e = 0; e < av.size(); e += 3) av[e] = e % 2 ? 32767 : -32767;
                    // Chains as long as the block, unless statistics take in what is not A.
                    if (data == 2) {
                        std::fill(av.begin(), av.end(), int16_t{1});
                        for (size_t e = 0; e < bv.size(); ++e) bv[e] = e % 2 ? 32767 : -32767;
                    }
                    std::vector<int16_t> at(static_cast<size_t>(k * m));
                    for (int64_t i = 0; i < m; ++i)
                        for (int64_t kk = 0; kk < k; ++kk)
                            at[static_cast<size_t>(kk * m + i)] =
                                av[static_cast<size_t>(i * lda + kk)];
                    const DfpMatrix<int16_t> a{av.data(), lda, Op::n, {&ea, 1}},
                        a_t{at.data(), m, Op::t, {&ea, 1}}, b{bv.data(), n, Op::n, {&eb, 1}};
                    const StoredCopy ca{a.data, a.ld}, cb{b.data, b.ld};
                    const DfpMatrix<int16_t> a_filled = ca.source_of(a), b_filled = cb.source_of(b);
                    GemmOptions opt;
                    opt.threads = threads;
                    opt.accumulate = pad == 0;
                    const std::vector<float> c0(static_cast<size_t>(m * n), 0.25f);
                    std::vector<float> in_place = c0, filled = c0, both = c0, packed = c0;
                    const GemmReport r0 = gemm_s16s16f32(m, n, k, a, b, in_place.data(), n, opt);
                    const GemmReport r1 =
                        gemm_s16s16f32(m, n, k, a_filled, b, filled.data(), n, opt);
                    const GemmReport r2 =
                        gemm_s16s16f32(m, n, k, a_filled, b_filled, both.data(), n, opt);
                    const GemmReport r3 = gemm_s16s16f32(m, n, k, a_t, b, packed.data(), n, opt);
                    const std::string what =
                        "m=" + std::to_string(m) + " n=" + std::to_string(n) +
                        " k=" + std::to_string(k) + " lda=" + std::to_string(lda) +
                        " data=" + std::to_string(data) + " threads=" + std::to_string(threads);
                    EXPECT_EQ(r0.a_in_place, supported && m >= 8 && k % 2 == 0) << what;
                    EXPECT_EQ(r1.a_in_place, supported && m >= 8) << what;
                    EXPECT_FALSE(r2.a_in_place) << what;
                    EXPECT_FALSE(r3.a_in_place) << what;
                    EXPECT_EQ(in_place, packed) << what;
                    EXPECT_EQ(filled, packed) << what;
                    EXPECT_EQ(both, packed) << what;
                    EXPECT_EQ(r1.min_chain_pairs, r3.min_chain_pairs) << what;
                }
}

TEST(Gemm, Int32OutputRefusesWhatItCannotProve) {
    const int64_t m = 4, n = 4, k = 3000;
    std::vector<int16_t> av(static_cast<size_t>(m * k), 32767),
        bv(static_cast<size_t>(k * n), 32767);
    const DfpMatrix<int16_t> a{av.data(), k, Op::n, {}}, b{bv.data(), n, Op::n, {}};
    std::vector<int32_t> c(static_cast<size_t>(m * n));
    GemmOptions opt;
    opt.input_shift = 0;
    EXPECT_THROW(gemm_s16s16s32(m, n, k, a, b, c.data(), n, opt), Error);
    opt.input_shift = 2;
    EXPECT_THROW(gemm_s16s16s32(m, n, 1, a, b, c.data(), n, opt), Error);
    // Two products fit: exact.
    opt.input_shift = 0;
    gemm_s16s16s32(m, n, 2, a, b, c.data(), n, opt);
    EXPECT_EQ(c[0], 2 * 32767 * 32767);
}

TEST(Gemm, MantissaMinus32768IsRefusedOnlyWhenUnprovable) {
    const int64_t m = 3, n = 3, k = 8;
    std::vector<int16_t> av(static_cast<size_t>(m * k), -32768),
        bv(static_cast<size_t>(k * n), 32767);
    const DfpMatrix<int16_t> a{av.data(), k, Op::n, {}}, b{bv.data(), n, Op::n, {}};
    std::vector<float> c(static_cast<size_t>(m * n));
    for (Isa isa : isas()) {
        GemmOptions opt;
        opt.isa = isa;
        opt.input_shift = 0;
        gemm_s16s16f32(m, n, k, a, b, c.data(), n, opt);  // -32768 * 32767 pairs still fit
        EXPECT_EQ(c[0], -32768.0f * 32767.0f * k);
        std::vector<int16_t> bneg(bv.size(), -32768);
        const DfpMatrix<int16_t> bn{bneg.data(), n, Op::n, {}};
        try {
            gemm_s16s16f32(m, n, k, a, bn, c.data(), n, opt);
            ADD_FAILURE() << "no error for -32768 x -32768 pairs";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("-32768"), std::string::npos);
        }
        opt.input_shift = 1;  // rounded to -16384: fine
        gemm_s16s16f32(m, n, k, a, bn, c.data(), n, opt);
        EXPECT_EQ(c[0], 32768.0f * 32768.0f * k);
    }
}

TEST(Gemm, AccumulateAddsToC) {
    std::mt19937 rng(8);
    const int64_t m = 20, n = 40, k = 300;
    Operand<int16_t> a(m, k, Op::n, 0, -500, 500, rng), b(k, n, Op::t, 0, -500, 500, rng);
    for (Isa isa : isas()) {
        GemmOptions opt;
        opt.isa = isa;
        opt.input_shift = 0;
        opt.accumulate = true;
        std::vector<int32_t> c(static_cast<size_t>(m * n), 1000);
        gemm_s16s16s32(m, n, k, a.mat, b.mat, c.data(), n, opt);
        std::vector<float> cf(c.size(), 0.5f);
        gemm_s16s16f32(m, n, k, a.mat, b.mat, cf.data(), n, opt);
        const auto ref = ref_gemm_exact(m, n, k, a.mat, b.mat);
        for (size_t e = 0; e < c.size(); ++e) {
            ASSERT_EQ(c[e], ref[e] + 1000);
            ASSERT_EQ(cf[e], static_cast<float>(ref[e]) + 0.5f);  // |ref| < 2^24: exact
        }
    }
}

// The bias goes in exactly once per element, and the ReLU after everything: one K block and
// several, a K-sliced weight-gradient shape, edge tiles in both directions, accumulating or not,
// any thread count, K = 0, both input types; a short K over several blocks of rows and columns
// (the tiles then run row by row). Small integers keep every sum exact in FP32, so the
// order of the additions cannot hide a bias added twice or to the wrong column, nor a ReLU taken
// before the last K block. A NaN bias passes the ReLU.
template <typename T>
void expect_bias_once_relu_last(std::mt19937& rng) {
    const int64_t shapes[][3] = {
        {20, 40, 300}, {37, 45, 1100}, {24, 40, 9000}, {9, 70, 0}, {300, 2100, 50}};
    for (Isa isa : isas()) {
        if (sizeof(T) == 1 && isa == Isa::avx2) continue;  // no s8 kernel
        for (const auto& s : shapes) {
            const int64_t m = s[0], n = s[1], k = s[2];
            Operand<T> a(m, k, Op::n, 1, -20, 20, rng), b(k, n, Op::t, 1, -20, 20, rng);
            std::vector<float> bias(static_cast<size_t>(n));
            for (int64_t j = 0; j < n; ++j) bias[static_cast<size_t>(j)] = 0.5f * float(j) - 9.0f;
            bias[5] = NAN;
            const auto ref = ref_gemm_exact(m, n, k, a.mat, b.mat);
            for (int variant = 0; variant < 8; ++variant) {
                const bool accumulate = variant & 1, relu = variant & 2;
                GemmOptions opt;
                opt.isa = isa;
                opt.threads = variant & 4 ? 3 : 1;
                opt.accumulate = accumulate;
                opt.bias = bias.data();
                opt.relu = relu;
                std::vector<float> c(static_cast<size_t>(m * n), 1000.0f);
                if constexpr (sizeof(T) == 2)
                    gemm_s16s16f32(m, n, k, a.mat, b.mat, c.data(), n, opt);
                else
                    gemm_s8s8f32(m, n, k, a.mat, b.mat, c.data(), n, opt);
                for (int64_t i = 0; i < m; ++i)
                    for (int64_t j = 0; j < n; ++j) {
                        const size_t e = static_cast<size_t>(i * n + j);
                        float want = static_cast<float>(ref[e]) + bias[size_t(j)] +
                                     (accumulate ? 1000.0f : 0.0f);
                        if (relu && want < 0.0f) want = 0.0f;
                        if (j == 5 ? std::isnan(c[e]) : c[e] == want) continue;
                        FAIL() << isa_name(isa) << " m=" << m << " n=" << n << " k=" << k
                               << " variant=" << variant << " at " << i << "," << j << ": " << c[e]
                               << " instead of " << want;
                    }
            }
        }
    }
}

// The driver swaps the operands of a product with few rows of C and both operands K-contiguous
// (a fully-connected forward), and only then: the bias/ReLU test above checks the swapped results
// exactly, this one that its NT shapes with few rows do run swapped, on the same bits as NN.
TEST(Gemm, FewRowsWithBothOperandsKContiguousRunSwapped) {
    std::mt19937 rng(22);
    const GemmContext<int16_t>* ctx = s16_context(active_isa());
    const bool in_place = ctx != nullptr && ctx->f32_rows != nullptr;
    const int64_t n = 300, k = 260;
    for (int64_t m : {1, 20, 64, 65}) {
        Operand<int16_t> a(m, k, Op::n, 3, -30, 30, rng), bt(k, n, Op::t, 0, -30, 30, rng);
        std::vector<int16_t> bn(static_cast<size_t>(k * n));  // the same B stored as is
        for (int64_t kk = 0; kk < k; ++kk)
            for (int64_t j = 0; j < n; ++j)
                bn[static_cast<size_t>(kk * n + j)] = bt.data[static_cast<size_t>(j * k + kk)];
        const DfpMatrix<int16_t> b_n{bn.data(), n, Op::n};
        std::vector<float> c_t(static_cast<size_t>(m * n)), c_n(c_t.size());
        const GemmReport r_t = gemm_s16s16f32(m, n, k, a.mat, bt.mat, c_t.data(), n);
        const GemmReport r_n = gemm_s16s16f32(m, n, k, a.mat, b_n, c_n.data(), n);
        EXPECT_EQ(r_t.swapped, in_place && m <= 64) << "m=" << m;
        EXPECT_FALSE(r_n.swapped) << "m=" << m;
        EXPECT_EQ(c_t, c_n) << "m=" << m;  // small integers: every sum exact in FP32
    }
}

TEST(Gemm, BiasAddedOnceAndReluLast) {
    std::mt19937 rng(21);
    expect_bias_once_relu_last<int16_t>(rng);
    expect_bias_once_relu_last<int8_t>(rng);
    const std::vector<int16_t> x(4, 1);
    const float bias[2] = {1.0f, 2.0f};
    std::vector<int32_t> c(4);
    GemmOptions opt;
    opt.bias = bias;
    EXPECT_THROW(gemm_s16s16s32(2, 2, 2, {x.data(), 2}, {x.data(), 2}, c.data(), 2, opt), Error);
    opt.bias = nullptr;
    opt.relu = true;
    EXPECT_THROW(gemm_s16s16s32(2, 2, 2, {x.data(), 2}, {x.data(), 2}, c.data(), 2, opt), Error);
}

// rows_done gets every block of kRowsDoneRows rows of C once, holding its final values (bias and
// ReLU applied), however the product runs: split by rows (one B block or several, stealing or
// not), by columns, in K slices, swapped, with K = 0; on every ISA (the scalar one's A blocks are
// half as tall).
TEST(Gemm, RowsDoneSeesEveryBlockOfCOnceAndFinal) {
    std::mt19937 rng(31);
    struct Case {
        int64_t m, n, k;
        Op op_b;
        const char* what;
    };
    const Case cases[] = {{1001, 40, 300, Op::n, "rows, one K block"},
                          {1100, 160, 2100, Op::n, "rows, B packed per K block"},
                          {1200, 2100, 64, Op::n, "rows, several B blocks"},
                          {70, 300, 700, Op::n, "columns"},
                          {300, 40, 4099, Op::n, "K slices"},
                          {33, 500, 128, Op::t, "swapped"},
                          {150, 20, 0, Op::n, "K = 0"}};
    for (const Case& cs : cases) {
        int ea = 0, eb = 0;
        std::vector<int16_t> av = normal_s16(static_cast<size_t>(cs.m * cs.k), rng, &ea);
        std::vector<int16_t> bv = normal_s16(static_cast<size_t>(cs.k * cs.n), rng, &eb);
        const DfpMatrix<int16_t> a{av.data(), std::max<int64_t>(cs.k, 1), Op::n, {&ea, 1}},
            b{bv.data(), cs.op_b == Op::n ? cs.n : cs.k, cs.op_b, {&eb, 1}};
        std::vector<float> bias(static_cast<size_t>(cs.n));
        for (auto& x : bias) x = std::normal_distribution<float>(0.0f, 2.0f)(rng);
        for (Isa isa : isas())
            for (int threads : {1, 2, 3}) {
                GemmOptions opt;
                opt.isa = isa;
                opt.threads = threads;
                opt.bias = bias.data();
                opt.relu = true;
                std::vector<float> want(static_cast<size_t>(cs.m * cs.n));
                gemm_s16s16f32(cs.m, cs.n, cs.k, a, b, want.data(), cs.n, opt);
                const int64_t blocks = (cs.m + kRowsDoneRows - 1) / kRowsDoneRows;
                std::vector<std::atomic<int>> seen(static_cast<size_t>(blocks));
                std::atomic<int> misplaced{0}, unfinished{0};
                std::vector<float> c(want.size(), 7.0f);
                opt.rows_done = [&](int64_t row0, int64_t rows) {
                    const int64_t b0 = row0 / kRowsDoneRows;
                    if (row0 % kRowsDoneRows != 0 || b0 >= blocks ||
                        rows != std::min(kRowsDoneRows, cs.m - row0)) {
                        ++misplaced;
                        return;
                    }
                    ++seen[static_cast<size_t>(b0)];
                    const size_t from = static_cast<size_t>(row0 * cs.n);
                    if (!std::equal(want.begin() + from, want.begin() + from + rows * cs.n,
                                    c.begin() + from))
                        ++unfinished;
                };
                gemm_s16s16f32(cs.m, cs.n, cs.k, a, b, c.data(), cs.n, opt);
                const std::string where = std::string(cs.what) + " " + isa_name(isa) +
                                          " threads=" + std::to_string(threads);
                EXPECT_EQ(c, want) << where;
                EXPECT_EQ(misplaced.load(), 0) << where;
                EXPECT_EQ(unfinished.load(), 0) << where;
                for (int64_t i = 0; i < blocks; ++i)
                    EXPECT_EQ(seen[static_cast<size_t>(i)].load(), 1) << where << " block " << i;
            }
    }
}

// Split along N, and along M with a thread that has run out taking the last A blocks of another's
// range (one K block; several with B resident; several with B packed per K block; A packed, and
// read in place without an input shift; an edge block of rows): the same bits for any thread
// count. More threads than cores make some finish first, so blocks are stolen: asserted, as
// stealing that never happened would go untested.
TEST(Gemm, ThreadCountDoesNotChangeABit) {
    std::mt19937 rng(9);
    const int64_t shapes[][3] = {
        {70, 300, 700}, {1001, 40, 700}, {1001, 40, 300}, {1100, 160, 2100}};
    const int crowd = 2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) + 1;
    int64_t stolen = 0;
    for (const auto& s : shapes)
        for (int shift : {0, 1}) {
            const int64_t m = s[0], n = s[1], k = s[2];
            int ea = 0, eb = 0;
            std::vector<int16_t> av = normal_s16(static_cast<size_t>(m * k), rng, &ea);
            std::vector<int16_t> bv = normal_s16(static_cast<size_t>(k * n), rng, &eb);
            const DfpMatrix<int16_t> a{av.data(), k, Op::n, {&ea, 1}},
                b{bv.data(), n, Op::n, {&eb, 1}};
            std::vector<float> c1(static_cast<size_t>(m * n)), c2(c1.size());
            GemmOptions opt;
            opt.input_shift = shift;
            opt.threads = 1;
            gemm_s16s16f32(m, n, k, a, b, c1.data(), n, opt);
            for (int threads : {2, 3, crowd})
                for (int rep = 0; rep < (threads == crowd ? 4 : 1); ++rep) {
                    opt.threads = threads;
                    std::fill(c2.begin(), c2.end(), 7.0f);
                    stolen += gemm_s16s16f32(m, n, k, a, b, c2.data(), n, opt).stolen_blocks;
                    EXPECT_EQ(c1, c2) << "m=" << m << " n=" << n << " k=" << k << " shift=" << shift
                                      << " threads=" << threads;
                }
        }
    EXPECT_GT(stolen, 0) << "no thread ran another's A blocks: stealing went untested";
}

// A weight-gradient shape (K far longer than M and N) is summed in two K slices: still within FP32
// rounding of the exact product, on every ISA and transpose, adding to C when asked, and the
// same bits for 1, 2 or 3 threads (the slicing depends on the shape only). K = 4099: odd, and
// the slice boundary is not a multiple of any block.
TEST(Gemm, KSlicedProductsMatchDoubleForAnyThreadCount) {
    std::mt19937 rng(12);
    for (Isa isa : isas())
        for (Op oa : {Op::n, Op::t})
            for (Op ob : {Op::n, Op::t}) {
                const int64_t m = 37, n = 70, k = 4099;
                int ea = 0, eb = 0;
                std::vector<int16_t> av = normal_s16(static_cast<size_t>(m * k), rng, &ea);
                std::vector<int16_t> bv = normal_s16(static_cast<size_t>(k * n), rng, &eb);
                const DfpMatrix<int16_t> a{av.data(), oa == Op::n ? k : m, oa, {&ea, 1}};
                const DfpMatrix<int16_t> b{bv.data(), ob == Op::n ? n : k, ob, {&eb, 1}};
                const char* ops =
                    oa == Op::n ? (ob == Op::n ? "NN" : "NT") : (ob == Op::n ? "TN" : "TT");
                GemmOptions opt;
                opt.isa = isa;
                std::vector<float> first;
                for (int threads : {1, 2, 3}) {
                    opt.threads = threads;
                    opt.accumulate = false;
                    std::vector<float> c(static_cast<size_t>(m * n), 9.0f);
                    const GemmReport rep = gemm_s16s16f32(m, n, k, a, b, c.data(), n, opt);
                    if (first.empty()) {
                        first = c;
                        expect_f32_close(m, n, k, a, b, c, rep, ops);
                    }
                    ASSERT_EQ(std::memcmp(c.data(), first.data(), c.size() * 4), 0)
                        << isa_name(isa) << " " << ops << " threads " << threads;
                    // Accumulating onto C0 = -C gives zeros up to FP32 rounding of the sums,
                    // small next to the largest |C|.
                    for (float& x : c) x = -x;
                    opt.accumulate = true;
                    gemm_s16s16f32(m, n, k, a, b, c.data(), n, opt);
                    float worst = 0, largest = 0;
                    for (size_t e = 0; e < c.size(); ++e) {
                        worst = std::max(worst, std::abs(c[e]));
                        largest = std::max(largest, std::abs(first[e]));
                    }
                    EXPECT_LT(worst, 1e-5f * largest)
                        << isa_name(isa) << " " << ops << " accumulate";
                }
            }
}

TEST(Gemm, S8Fp32MatchesDouble) {
    std::mt19937 rng(10);
    const int64_t m = 33, n = 65, k = 2000;
    for (Isa isa : isas()) {
        Operand<int8_t> a(m, k, Op::t, 0, -127, 127, rng), b(k, n, Op::n, 0, -127, 127, rng);
        int ea = -7, eb = -9;
        a.mat.exponents = {&ea, 1};
        b.mat.exponents = {&eb, 1};
        std::vector<float> c(static_cast<size_t>(m * n));
        GemmOptions opt;
        opt.isa = isa;
        const GemmReport rep = gemm_s8s8f32(m, n, k, a.mat, b.mat, c.data(), n, opt);
        const auto ref = ref_gemm_scaled(m, n, k, a.mat, b.mat);
        for (size_t e = 0; e < c.size(); ++e)  // < 2^24 per block, 1 block + 1 add: 2 roundings
            ASSERT_NEAR(c[e], ref[e], 2 * std::ldexp(std::abs(ref[e]), -23) + 1e-30) << rep.kernel;
        std::printf("s8s8f32 %s PASS\n", rep.kernel.c_str());
    }
}

// The message of the dfp::Error that `call` throws, or "" when it throws none.
template <typename F>
std::string error_message(F&& call) {
    try {
        call();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// MXINT8-style block-scaled operands: exponents per row (column) and block of k_block K values,
// spread over 2^-40 .. 2^10 so that a block scaled wrongly shows. Against a double reference: each
// block's INT32 sum is exact in FP32 (|sum| <= 128 * 127^2 < 2^24), its scale a power of two, so
// the error is that of the FP32 FMAs (one per block and K block of the GEMM, plus adds into C).
TEST(Gemm, S8BlockScaledMatchesDoubleOnEveryIsa) {
    std::mt19937 rng(12);
    struct Case {
        int64_t m, n, k;
        int k_block;
        bool b_blocked;  // else B has one exponent per column
    };
    int cases = 0;
    for (const Case cs :
         {Case{33, 65, 2000, 32, true}, Case{8, 32, 128, 32, true}, Case{70, 47, 300, 4, true},
          Case{5, 300, 37, 128, true}, Case{40, 90, 1500, 32, false}})
        for (Op op_a : {Op::n, Op::t})
            for (Op op_b : {Op::n, Op::t}) {
                const auto [m, n, k, kb, b_blocked] = cs;
                Operand<int8_t> a(m, k, op_a, 3, -127, 127, rng), b(k, n, op_b, 1, -127, 127, rng);
                const int64_t blocks = (k + kb - 1) / kb;
                std::uniform_int_distribution<int> e(-40, 10);
                std::vector<int> ea(static_cast<size_t>(m * blocks)),
                    eb(static_cast<size_t>(n * (b_blocked ? blocks : 1)));
                for (auto& x : ea) x = e(rng);
                for (auto& x : eb) x = e(rng);
                a.mat.exponents = ea;
                a.mat.k_block = kb;
                b.mat.exponents = eb;
                b.mat.k_block = b_blocked ? kb : 0;
                auto at = [&](const Operand<int8_t>& x, int64_t r, int64_t c) {
                    return double(x.mat.op == Op::n ? x.data[size_t(r * x.ld + c)]
                                                    : x.data[size_t(c * x.ld + r)]);
                };
                std::vector<double> ref(size_t(m * n)), mag(size_t(m * n));
                for (int64_t i = 0; i < m; ++i)
                    for (int64_t j = 0; j < n; ++j)
                        for (int64_t q = 0; q < blocks; ++q) {
                            double dot = 0;
                            for (int64_t kk = q * kb; kk < std::min(k, (q + 1) * kb); ++kk)
                                dot += at(a, i, kk) * at(b, kk, j);
                            const int e_b = eb[size_t(b_blocked ? j * blocks + q : j)];
                            const double term = std::ldexp(dot, ea[size_t(i * blocks + q)] + e_b);
                            ref[size_t(i * n + j)] += term;
                            mag[size_t(i * n + j)] += std::abs(term);
                        }
                std::vector<float> c1(size_t(m * n)), c2(c1.size());
                for (Isa isa : isas()) {
                    GemmOptions opt;
                    opt.isa = isa;
                    opt.threads = 1;
                    const GemmReport rep = gemm_s8s8f32(m, n, k, a.mat, b.mat, c1.data(), n, opt);
                    opt.threads = 2;
                    gemm_s8s8f32(m, n, k, a.mat, b.mat, c2.data(), n, opt);
                    ASSERT_EQ(0, std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)))
                        << "thread count changed the result: " << rep.kernel;
                    for (size_t x = 0; x < c1.size(); ++x)
                        ASSERT_NEAR(c1[x], ref[x], double(blocks + 2) * std::ldexp(mag[x], -23))
                            << rep.kernel << " m=" << m << " n=" << n << " k=" << k
                            << " k_block=" << kb << " element " << x;
                    ++cases;
                }
            }
    std::printf("s8s8f32 block-scaled: %d cases PASS\n", cases);
}

TEST(Gemm, S8BlockScaledRefusesWhatItCannotDo) {
    std::vector<int8_t> x(100, 1);
    std::vector<int16_t> x16(100, 1);
    std::vector<float> c(100);
    std::vector<int32_t> c32(100);
    std::vector<int> e30(30, 0), e10(10, 0);  // 10 rows x ceil(10 / 4) blocks = 30
    DfpMatrix<int8_t> blocked{x.data(), 10, Op::n, e30};
    blocked.k_block = 4;
    const DfpMatrix<int8_t> plain{x.data(), 10, Op::n, {}};
    EXPECT_EQ(error_message([&] { gemm_s8s8f32(10, 10, 10, blocked, plain, c.data(), 10); }), "");
    EXPECT_NE(error_message([&] {
                  gemm_s8s8s32(10, 10, 10, blocked, plain, c32.data(), 10);
              }).find("FP32 output"),
              std::string::npos);
    DfpMatrix<int16_t> b16{x16.data(), 10, Op::n, e30};
    b16.k_block = 4;
    EXPECT_NE(error_message([&] {
                  gemm_s16s16f32(10, 10, 10, b16, DfpMatrix<int16_t>{x16.data(), 10, Op::n, {}},
                                 c.data(), 10);
              }).find("int8"),
              std::string::npos);
    DfpMatrix<int8_t> odd = blocked;
    odd.k_block = 6;
    EXPECT_NE(error_message([&] {
                  gemm_s8s8f32(10, 10, 10, odd, plain, c.data(), 10);
              }).find("power of two"),
              std::string::npos);
    DfpMatrix<int8_t> few = blocked;
    few.exponents = e10;
    EXPECT_NE(error_message([&] {
                  gemm_s8s8f32(10, 10, 10, few, plain, c.data(), 10);
              }).find("expected 30"),
              std::string::npos);
    DfpMatrix<int8_t> other = blocked;
    other.k_block = 8;
    other.exponents = std::span<const int>(e30.data(), 20);
    EXPECT_NE(error_message([&] {
                  gemm_s8s8f32(10, 10, 10, blocked, other, c.data(), 10);
              }).find("different k_block"),
              std::string::npos);
}

TEST(Gemm, RejectsBadArgumentsNamingThem) {
    std::vector<int16_t> x(100, 1);
    std::vector<float> c(100);
    const DfpMatrix<int16_t> ok{x.data(), 10, Op::n, {}};
    EXPECT_NE(error_message([&] {
                  gemm_s16s16f32(10, 10, 10, DfpMatrix<int16_t>{x.data(), 5, Op::n, {}}, ok,
                                 c.data(), 10);
              }).find("A"),
              std::string::npos);
    EXPECT_NE(error_message([&] { gemm_s16s16f32(10, 10, 10, ok, ok, c.data(), 3); }).find("C"),
              std::string::npos);
    std::vector<int> three(3, 0);
    EXPECT_NE(error_message([&] {
                  gemm_s16s16f32(10, 10, 10, ok, DfpMatrix<int16_t>{x.data(), 10, Op::n, three},
                                 c.data(), 10);
              }).find("exponents"),
              std::string::npos);
    GemmOptions bad;
    bad.input_shift = 9;
    EXPECT_NE(error_message([&] {
                  gemm_s16s16f32(10, 10, 10, ok, ok, c.data(), 10, bad);
              }).find("input_shift"),
              std::string::npos);
    bad = {};
    bad.max_chain_pairs = 0;
    EXPECT_NE(error_message([&] {
                  gemm_s16s16f32(10, 10, 10, ok, ok, c.data(), 10, bad);
              }).find("max_chain_pairs"),
              std::string::npos);
}

RC_GTEST_PROP(GemmProperty, S16Int32EqualsExactReference, ()) {
    const int64_t m = *rc::gen::inRange<int64_t>(1, 40);
    const int64_t n = *rc::gen::inRange<int64_t>(1, 70);
    const int64_t k = *rc::gen::inRange<int64_t>(1, 600);
    const bool ta = *rc::gen::arbitrary<bool>(), tb = *rc::gen::arbitrary<bool>();
    const auto isa_list = isas();
    const Isa isa = isa_list[*rc::gen::inRange<size_t>(0, isa_list.size())];
    std::mt19937 rng(*rc::gen::arbitrary<uint32_t>());
    Operand<int16_t> a(m, k, ta ? Op::t : Op::n, 1, -1500, 1500, rng),
        b(k, n, tb ? Op::t : Op::n, 0, -1500, 1500, rng);
    std::vector<int32_t> c(static_cast<size_t>(m * n));
    GemmOptions opt;
    opt.isa = isa;
    opt.input_shift = 0;
    gemm_s16s16s32(m, n, k, a.mat, b.mat, c.data(), n, opt);
    const auto ref = ref_gemm_exact(m, n, k, a.mat, b.mat);
    for (size_t e = 0; e < c.size(); ++e) RC_ASSERT(int64_t{c[e]} == ref[e]);
}

}  // namespace
}  // namespace dfp::kernels
