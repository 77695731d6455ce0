// AVX512-VNNI micro-kernels and packers: s16s16 on vpdpwssd (vpdpwssds in count mode), s8s8 on
// vpdpbusd. Tile 8 x 32: 16 zmm INT32 accumulators (8 rows x 2 vectors of 16 columns), 2 zmm of B
// and one broadcast of A per K-pair: 18 of the 32 registers, so nothing spills in the hot loop, and
// 10 loads per 16 multiply-add instructions. The FP32 sums of finished chains live in a 2 KiB
// stack tile (no registers are left for them); a chain of >= 32 pairs makes that traffic small. A
// block's last chain goes from the accumulators to C (plus the tile of the chains before it).
// The s16 FP32 kernel has a twin that broadcasts A from 8 unpacked rows (f32_rows), so K-contiguous
// A needs no packing, only its statistics (row_norm_levels_avx512).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/gemm_context.hpp"
#include "kernels/gemm_scalar.hpp"

namespace dfp::kernels {
namespace {

constexpr int kMr = 8, kNr = 32, kNrv = kNr / 16;  // zmm vectors per row of the tile

enum class Mode { f32, f32_count, s32, f32_blocked, f32_rows };

// ---- micro-kernels ----

// One chain of n >= 1 K-groups, written in assembly: GCC 12, given the same loop in intrinsics,
// moves the accumulators between registers and the stack inside the hot loop. zmm0..15 are the
// accumulators (row i, vector v in zmm(2i + v), which is also the 64-byte slot of the 8 x 32 tile
// `t`), zmm30/31 the two B vectors, zmm29 the broadcast of A. Per K-group: 2 aligned loads of B,
// 8 broadcasts, 16 dot instructions. AT&T order "B, A, acc": for vpdpbusd the middle operand is the
// unsigned one. After the loop the epilogue (one of the macros below) leaves the chain in `t`.
// clang-format off
#define DFP_ROW(insn, addr, r0, r1)                              \
    "vpbroadcastd " addr ", %%zmm29\n\t"                         \
    insn " %%zmm30, %%zmm29, %%zmm" #r0 "\n\t"                   \
    insn " %%zmm31, %%zmm29, %%zmm" #r1 "\n\t"
// The narrow variant (16 columns, for tiles at the right edge of C) uses the even registers only.
#define DFP_ROW1(insn, addr, r0, r1)                             \
    "vpbroadcastd " addr ", %%zmm29\n\t"                         \
    insn " %%zmm30, %%zmm29, %%zmm" #r0 "\n\t"
// Packed A: row i of the K-group at 4i(a).
#define DFP_ROWS(row, insn)                                                        \
    row(insn, "0(%[a])", 0, 1) row(insn, "4(%[a])", 2, 3)                          \
    row(insn, "8(%[a])", 4, 5) row(insn, "12(%[a])", 6, 7)                         \
    row(insn, "16(%[a])", 8, 9) row(insn, "20(%[a])", 10, 11)                      \
    row(insn, "24(%[a])", 12, 13) row(insn, "28(%[a])", 14, 15)
// A read in place (f32_rows: rows of K-contiguous int16 s bytes apart): row i at a + i * s, from
// the bases a, a3 = a + 3s and a5 = a + 5s (x86 scales are 1, 2, 4 or 8).
#define DFP_UROWS(row, insn)                                                       \
    row(insn, "(%[a])", 0, 1) row(insn, "(%[a],%[s],1)", 2, 3)                     \
    row(insn, "(%[a],%[s],2)", 4, 5) row(insn, "(%[a3])", 6, 7)                    \
    row(insn, "(%[a],%[s],4)", 8, 9) row(insn, "(%[a5])", 10, 11)                  \
    row(insn, "(%[a5],%[s],1)", 12, 13) row(insn, "(%[a3],%[s],4)", 14, 15)
#define DFP_ALL16(m) m(0) m(1) m(2) m(3) m(4) m(5) m(6) m(7) m(8) m(9) m(10) m(11) m(12) m(13) m(14) m(15)
#define DFP_EVEN8(m) m(0) m(2) m(4) m(6) m(8) m(10) m(12) m(14)
#define DFP_ZERO(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
#define DFP_STORE_I32(r) "vmovdqa32 %%zmm" #r ", " #r "*64(%[t])\n\t"
#define DFP_CVT_STORE(r)                                         \
    "vcvtdq2ps %%zmm" #r ", %%zmm" #r "\n\t"                     \
    "vmovaps %%zmm" #r ", " #r "*64(%[t])\n\t"
#define DFP_CVT_ADD(r)                                           \
    "vcvtdq2ps %%zmm" #r ", %%zmm" #r "\n\t"                     \
    "vaddps " #r "*64(%[t]), %%zmm" #r ", %%zmm" #r "\n\t"       \
    "vmovaps %%zmm" #r ", " #r "*64(%[t])\n\t"
// Block-scaled: the chain converted, times its scale tile `sc` (same layout as t), stored in t or
// added to t with one FMA (zmm28 holds the tile's row).
#define DFP_CVT_SCALE_STORE(r)                                   \
    "vcvtdq2ps %%zmm" #r ", %%zmm" #r "\n\t"                     \
    "vmulps " #r "*64(%[sc]), %%zmm" #r ", %%zmm" #r "\n\t"      \
    "vmovaps %%zmm" #r ", " #r "*64(%[t])\n\t"
#define DFP_CVT_SCALE_ADD(r)                                     \
    "vcvtdq2ps %%zmm" #r ", %%zmm" #r "\n\t"                     \
    "vmovaps " #r "*64(%[t]), %%zmm28\n\t"                       \
    "vfmadd231ps " #r "*64(%[sc]), %%zmm" #r ", %%zmm28\n\t"     \
    "vmovaps %%zmm28, " #r "*64(%[t])\n\t"
// s8: subtract 128 * column sums (comp: 2 vectors, already multiplied) from every accumulator.
#define DFP_COMP(r) "vpsubd (" #r "%%2)*64(%[comp]), %%zmm" #r ", %%zmm" #r "\n\t"
#define DFP_LOAD_B2 "vmovdqa64 (%[b]), %%zmm30\n\tvmovdqa64 64(%[b]), %%zmm31\n\t"
#define DFP_LOAD_B1 "vmovdqa64 (%[b]), %%zmm30\n\t"
// The loop over the chain's K-groups; `rows` (DFP_ROWS or DFP_UROWS) multiplies one K-group and
// `next` advances A to the next. The prefetch stream (see UkernelArgs::prefetch): one line per
// K-group.
#define DFP_LOOP(regs, loadb, rows, next, epilogue)                                        \
    regs(DFP_ZERO)                                                                         \
    "1:\n\t"                                                                               \
    loadb                                                                                  \
    "prefetcht1 (%[pf])\n\t"                                                               \
    "add %[pfs], %[pf]\n\t"                                                                \
    rows                                                                                   \
    next                                                                                   \
    "sub $-128, %[b]\n\t"                                                                  \
    "dec %[n]\n\t"                                                                         \
    "jnz 1b\n\t"                                                                           \
    epilogue
#define DFP_CLOBBERS                                                                       \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",        \
    "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm28", "xmm29", "xmm30",       \
    "xmm31", "cc", "memory"
#define DFP_CHAIN_NV(regs, loadb, row, insn, epilogue)                                     \
    asm volatile(DFP_LOOP(regs, loadb, DFP_ROWS(row, insn), "add $32, %[a]\n\t", epilogue) \
                 : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n), [pf] "+r"(pf)                    \
                 : [t] "r"(t), [comp] "r"(comp), [pfs] "r"(pfs), [sc] "r"(sc)              \
                 : DFP_CLOBBERS)
#define DFP_UCHAIN_NV(regs, loadb, row, insn, epilogue)                                    \
    asm volatile(DFP_LOOP(regs, loadb, DFP_UROWS(row, insn),                               \
                          "add $4, %[a]\n\tadd $4, %[a3]\n\tadd $4, %[a5]\n\t", epilogue)     \
                 : [a] "+r"(a), [a3] "+r"(a3), [a5] "+r"(a5), [b] "+r"(b), [n] "+r"(n),    \
                   [pf] "+r"(pf)                                                           \
                 : [t] "r"(t), [s] "r"(s), [pfs] "r"(pfs)                                  \
                 : DFP_CLOBBERS)
// A block's last chain leaves its FP32 sums in zmm0..15 for the caller (chain_8x32_regs): the
// accumulators are outputs bound to those registers, so they are not clobbers.
#define DFP_OUT(r) , "=v"(z##r)
#define DFP_CVT(r) "vcvtdq2ps %%zmm" #r ", %%zmm" #r "\n\t"
#define DFP_REG_CLOBBERS "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory"
#define DFP_CHAIN_REGS(regs, loadb, row)                                                   \
    asm volatile(DFP_LOOP(regs, loadb, DFP_ROWS(row, "vpdpwssd"), "add $32, %[a]\n\t",     \
                          regs(DFP_CVT))                                                   \
                 : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n), [pf] "+r"(pf) regs(DFP_OUT)       \
                 : [pfs] "r"(pfs)                                                          \
                 : DFP_REG_CLOBBERS)
#define DFP_UCHAIN_REGS(regs, loadb, row)                                                  \
    asm volatile(DFP_LOOP(regs, loadb, DFP_UROWS(row, "vpdpwssd"),                         \
                          "add $4, %[a]\n\tadd $4, %[a3]\n\tadd $4, %[a5]\n\t", regs(DFP_CVT)) \
                 : [a] "+r"(a), [a3] "+r"(a3), [a5] "+r"(a5), [b] "+r"(b), [n] "+r"(n),    \
                   [pf] "+r"(pf) regs(DFP_OUT)                                             \
                 : [s] "r"(s), [pfs] "r"(pfs)                                              \
                 : DFP_REG_CLOBBERS)
#define DFP_UCHAIN2(insn, epilogue) DFP_UCHAIN_NV(DFP_ALL16, DFP_LOAD_B2, DFP_ROW, insn, epilogue)
#define DFP_UCHAIN1(insn, epilogue) DFP_UCHAIN_NV(DFP_EVEN8, DFP_LOAD_B1, DFP_ROW1, insn, epilogue)
#define DFP_CHAIN2(insn, epilogue) DFP_CHAIN_NV(DFP_ALL16, DFP_LOAD_B2, DFP_ROW, insn, epilogue)
#define DFP_CHAIN1(insn, epilogue) DFP_CHAIN_NV(DFP_EVEN8, DFP_LOAD_B1, DFP_ROW1, insn, epilogue)
// clang-format on

// What the chain leaves in the tile t (8 x 32, 64-byte aligned).
enum class Epilogue {
    i32,               // the INT32 sums (s32 output, count mode)
    f32_first,         // the sums converted to FP32
    f32_add,           // the sums converted to FP32 and added to t
    f32_scaled_first,  // block-scaled: the sums converted to FP32 times sc
    f32_scaled_add,    // block-scaled: the sums converted to FP32 times sc, added to t
};

// NV: vectors of 16 columns per row, 2 (the 8 x 32 tile) or 1 (its left half, for edges).
template <int NV, bool s8, bool saturate, Epilogue ep>
__attribute__((always_inline)) inline void chain_8x32(const char* a, const __m512i* b, int64_t n,
                                                      void* t, const __m512i* comp, const char*& pf,
                                                      int64_t pfs, const float* sc = nullptr) {
    static_assert(NV == 1 || NV == 2);
    static_assert(!s8 || ep != Epilogue::f32_add, "s8 blocks are one chain unless block-scaled");
    static_assert(!saturate || ep == Epilogue::i32, "count mode inspects the INT32 sums");
    static_assert(s8 || (ep != Epilogue::f32_scaled_first && ep != Epilogue::f32_scaled_add));
    if constexpr (NV == 2) {
        if constexpr (ep == Epilogue::f32_scaled_first)
            DFP_CHAIN2("vpdpbusd", DFP_ALL16(DFP_COMP) DFP_ALL16(DFP_CVT_SCALE_STORE));
        else if constexpr (ep == Epilogue::f32_scaled_add)
            DFP_CHAIN2("vpdpbusd", DFP_ALL16(DFP_COMP) DFP_ALL16(DFP_CVT_SCALE_ADD));
        else if constexpr (s8 && ep == Epilogue::i32)
            DFP_CHAIN2("vpdpbusd", DFP_ALL16(DFP_COMP) DFP_ALL16(DFP_STORE_I32));
        else if constexpr (s8)
            DFP_CHAIN2("vpdpbusd", DFP_ALL16(DFP_COMP) DFP_ALL16(DFP_CVT_STORE));
        else if constexpr (saturate)
            DFP_CHAIN2("vpdpwssds", DFP_ALL16(DFP_STORE_I32));
        else if constexpr (ep == Epilogue::i32)
            DFP_CHAIN2("vpdpwssd", DFP_ALL16(DFP_STORE_I32));
        else if constexpr (ep == Epilogue::f32_first)
            DFP_CHAIN2("vpdpwssd", DFP_ALL16(DFP_CVT_STORE));
        else
            DFP_CHAIN2("vpdpwssd", DFP_ALL16(DFP_CVT_ADD));
    } else {
        if constexpr (ep == Epilogue::f32_scaled_first)
            DFP_CHAIN1("vpdpbusd", DFP_EVEN8(DFP_COMP) DFP_EVEN8(DFP_CVT_SCALE_STORE));
        else if constexpr (ep == Epilogue::f32_scaled_add)
            DFP_CHAIN1("vpdpbusd", DFP_EVEN8(DFP_COMP) DFP_EVEN8(DFP_CVT_SCALE_ADD));
        else if constexpr (s8 && ep == Epilogue::i32)
            DFP_CHAIN1("vpdpbusd", DFP_EVEN8(DFP_COMP) DFP_EVEN8(DFP_STORE_I32));
        else if constexpr (s8)
            DFP_CHAIN1("vpdpbusd", DFP_EVEN8(DFP_COMP) DFP_EVEN8(DFP_CVT_STORE));
        else if constexpr (saturate)
            DFP_CHAIN1("vpdpwssds", DFP_EVEN8(DFP_STORE_I32));
        else if constexpr (ep == Epilogue::i32)
            DFP_CHAIN1("vpdpwssd", DFP_EVEN8(DFP_STORE_I32));
        else if constexpr (ep == Epilogue::f32_first)
            DFP_CHAIN1("vpdpwssd", DFP_EVEN8(DFP_CVT_STORE));
        else
            DFP_CHAIN1("vpdpwssd", DFP_EVEN8(DFP_CVT_ADD));
    }
}
// A chain on unpacked A: row i of the chain's first K-pair at a + i * s bytes (s16, FP32 output).
template <int NV, bool first>
__attribute__((always_inline)) inline void chain_8x32_rows(const char* a, int64_t s,
                                                           const __m512i* b, int64_t n, void* t,
                                                           const char*& pf, int64_t pfs) {
    const char* a3 = a + 3 * s;
    const char* a5 = a + 5 * s;
    if constexpr (NV == 2) {
        if constexpr (first)
            DFP_UCHAIN2("vpdpwssd", DFP_ALL16(DFP_CVT_STORE));
        else
            DFP_UCHAIN2("vpdpwssd", DFP_ALL16(DFP_CVT_ADD));
    } else {
        if constexpr (first)
            DFP_UCHAIN1("vpdpwssd", DFP_EVEN8(DFP_CVT_STORE));
        else
            DFP_UCHAIN1("vpdpwssd", DFP_EVEN8(DFP_CVT_ADD));
    }
}

// The FP32 sums of a block's last chain (s16), in registers: row i, vector v in v[i][v] (NV = 1:
// v[i][0] only). A (in_place) is read as for chain_8x32_rows, else as for chain_8x32. Storing C
// straight from them saves a round trip through the stack tile; where the block is that one
// chain (K = 64: 32 K-groups per tile) the trip took about a quarter of the micro-kernel's time.
struct TileRegs {
    __m512 v[kMr][kNrv];
};
template <int NV, bool in_place>
__attribute__((always_inline)) inline TileRegs chain_8x32_regs(const char* a, int64_t s,
                                                               const __m512i* b, int64_t n,
                                                               const char*& pf, int64_t pfs) {
    register __m512 z0 asm("zmm0"), z1 asm("zmm1"), z2 asm("zmm2"), z3 asm("zmm3");
    register __m512 z4 asm("zmm4"), z5 asm("zmm5"), z6 asm("zmm6"), z7 asm("zmm7");
    register __m512 z8 asm("zmm8"), z9 asm("zmm9"), z10 asm("zmm10"), z11 asm("zmm11");
    register __m512 z12 asm("zmm12"), z13 asm("zmm13"), z14 asm("zmm14"), z15 asm("zmm15");
    if constexpr (in_place) {
        const char* a3 = a + 3 * s;
        const char* a5 = a + 5 * s;
        if constexpr (NV == 2)
            DFP_UCHAIN_REGS(DFP_ALL16, DFP_LOAD_B2, DFP_ROW);
        else
            DFP_UCHAIN_REGS(DFP_EVEN8, DFP_LOAD_B1, DFP_ROW1);
    } else {
        if constexpr (NV == 2)
            DFP_CHAIN_REGS(DFP_ALL16, DFP_LOAD_B2, DFP_ROW);
        else
            DFP_CHAIN_REGS(DFP_EVEN8, DFP_LOAD_B1, DFP_ROW1);
    }
    if constexpr (NV == 2)
        return {
            {{z0, z1}, {z2, z3}, {z4, z5}, {z6, z7}, {z8, z9}, {z10, z11}, {z12, z13}, {z14, z15}}};
    else
        return {{{z0}, {z2}, {z4}, {z6}, {z8}, {z10}, {z12}, {z14}}};
}

#undef DFP_CHAIN_REGS
#undef DFP_UCHAIN_REGS
#undef DFP_REG_CLOBBERS
#undef DFP_CVT
#undef DFP_OUT
#undef DFP_CHAIN1
#undef DFP_UCHAIN1
#undef DFP_UCHAIN2
#undef DFP_UCHAIN_NV
#undef DFP_UROWS
#undef DFP_LOOP
#undef DFP_CLOBBERS
#undef DFP_CHAIN2
#undef DFP_CHAIN_NV
#undef DFP_LOAD_B1
#undef DFP_LOAD_B2
#undef DFP_COMP
#undef DFP_CVT_ADD
#undef DFP_CVT_STORE
#undef DFP_CVT_SCALE_ADD
#undef DFP_CVT_SCALE_STORE
#undef DFP_STORE_I32
#undef DFP_ZERO
#undef DFP_EVEN8
#undef DFP_ALL16
#undef DFP_ROWS
#undef DFP_ROW1
#undef DFP_ROW

// The FP32 tile's last step: C = sums(i, v) * 2^(row + column exponents) [+ C] [+ bias] [relu].
template <int NV, typename Sums>
__attribute__((always_inline)) inline void store_f32_tile(const UkernelArgs& args, Sums sums) {
    // Locals, so the stores to C cannot be taken to change them; full unrolling keeps register
    // sums in registers.
    float* const c0 = static_cast<float*>(args.c);
    const int64_t ldc = args.ldc;
    const float* const bias = args.bias;
    const bool load_c = args.load_c, relu = args.relu;
    __m512 cs[NV], bv[NV];
    for (int v = 0; v < NV; ++v) {
        cs[v] = _mm512_loadu_ps(args.col_scale + 16 * v);
        bv[v] = bias != nullptr ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
    }
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
        const __m512 rs = _mm512_set1_ps(args.row_scale[i]);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
            float* c = c0 + i * ldc + 16 * v;
            const __m512 x = _mm512_mul_ps(sums(i, v), _mm512_mul_ps(rs, cs[v]));
            __m512 y = load_c ? _mm512_add_ps(_mm512_loadu_ps(c), x) : x;
            if (bias != nullptr) y = _mm512_add_ps(y, bv[v]);
            // vmaxps returns its second operand when one is NaN, and on +-0: y.
            if (relu) y = _mm512_max_ps(_mm512_setzero_ps(), y);
            _mm512_storeu_ps(c, y);
        }
    }
}

// s8: KG = 4 bytes per lane, s16: KG = 2 int16 per lane; either way one 32-bit word per row of A
// and 32 words (2 zmm) per K-group of B. FP32 output accumulates the chains in the tile `sum`;
// count mode and INT32 output go through the INT32 tile `acc`.
template <bool s8, Mode mode, int NV = kNrv>
void ukernel_8x32(const UkernelArgs& args) {
    static_assert(NV == kNrv || mode != Mode::f32_count, "count mode reads the whole INT32 tile");
    static_assert(!s8 || mode != Mode::f32_rows, "A is read in place for s16 only");
    const char* a = static_cast<const char*>(args.a);
    const __m512i* b = static_cast<const __m512i*>(args.b);
    const int64_t kp = args.kp;
    // s8 and INT32 output: one chain per block (s8 cannot overflow in a block, see gemm.hpp; INT32
    // output wraps harmlessly); block-scaled: one chain per exponent block.
    const int64_t chain = mode == Mode::f32_blocked ? args.chain
                          : mode == Mode::s32 || s8 ? kp
                                                    : args.chain;
    // The C tile is read once per block, at the end: start fetching it now (it is often in L3).
    // A row of the tile is NV * 64 bytes, on NV + 1 cache lines when C is not 64-byte aligned
    // (a parameter gradient, or a caller's buffer).
    for (int i = 0; i < kMr; ++i) {
        const char* c = static_cast<const char*>(args.c) + i * args.ldc * 4;
        for (int v = 0; v < NV; ++v) _mm_prefetch(c + 64 * v, _MM_HINT_T0);
        _mm_prefetch(c + 64 * NV - 1, _MM_HINT_T0);
    }
    alignas(64) float sum[kMr * kNr];
    alignas(64) int32_t acc[kMr * kNr];
    alignas(64) __m512i comp[kNrv];
    if constexpr (s8)
        for (int v = 0; v < NV; ++v)
            comp[v] = _mm512_slli_epi32(_mm512_loadu_si512(args.b_col_sums + 16 * v), 7);
    int64_t events = 0;
    const char* pf = args.prefetch != nullptr ? args.prefetch : static_cast<const char*>(args.a);
    // s16 FP32 output: the last chain goes from the accumulators to C (adding the tile of the
    // chains before it, if any) instead of through the tile.
    constexpr bool last_in_registers = !s8 && (mode == Mode::f32 || mode == Mode::f32_rows);
    const int64_t tiled_end = last_in_registers ? (kp - 1) / chain * chain : kp;
    // K-group p0: of the packed micro-panel (kMr words each), or of A's first row in place.
    const auto a_at = [a](int64_t p0) { return a + p0 * (mode == Mode::f32_rows ? 4 : kMr * 4); };
    for (int64_t p0 = 0; p0 < tiled_end; p0 += chain) {
        const int64_t n = std::min(kp, p0 + chain) - p0;
        const char* ap = a_at(p0);
        const __m512i* bp = b + p0 * kNrv;
        if constexpr (mode == Mode::f32_blocked) {
            // This chain's compensation and scale tile 2^(eA_i + eB_j).
            alignas(64) float sc[kMr * kNr];
            const int64_t c = p0 / chain;
            for (int v = 0; v < NV; ++v)
                comp[v] =
                    _mm512_slli_epi32(_mm512_loadu_si512(args.b_col_sums + c * kNr + 16 * v), 7);
            for (int i = 0; i < kMr; ++i) {
                const __m512 as = _mm512_set1_ps(args.a_chain_scale[c * kMr + i]);
                for (int v = 0; v < NV; ++v)
                    _mm512_store_ps(
                        sc + i * kNr + 16 * v,
                        _mm512_mul_ps(as, _mm512_loadu_ps(args.b_chain_scale + c * kNr + 16 * v)));
            }
            if (p0 == 0)
                chain_8x32<NV, true, false, Epilogue::f32_scaled_first>(ap, bp, n, sum, comp, pf,
                                                                        args.prefetch_stride, sc);
            else
                chain_8x32<NV, true, false, Epilogue::f32_scaled_add>(ap, bp, n, sum, comp, pf,
                                                                      args.prefetch_stride, sc);
        } else if constexpr (mode == Mode::f32_rows) {
            if (p0 == 0)
                chain_8x32_rows<NV, true>(ap, args.a_row_stride, bp, n, sum, pf,
                                          args.prefetch_stride);
            else
                chain_8x32_rows<NV, false>(ap, args.a_row_stride, bp, n, sum, pf,
                                           args.prefetch_stride);
        } else if constexpr (mode == Mode::f32) {
            if (s8 || p0 == 0)
                chain_8x32<NV, s8, false, Epilogue::f32_first>(ap, bp, n, sum, comp, pf,
                                                               args.prefetch_stride);
            else if constexpr (!s8)
                chain_8x32<NV, false, false, Epilogue::f32_add>(ap, bp, n, sum, comp, pf,
                                                                args.prefetch_stride);
        } else {
            chain_8x32<NV, s8, mode == Mode::f32_count, Epilogue::i32>(ap, bp, n, acc, comp, pf,
                                                                       args.prefetch_stride);
        }
        if constexpr (mode == Mode::f32_count) {
            const __m512i hi = _mm512_set1_epi32(INT32_MAX), lo = _mm512_set1_epi32(INT32_MIN);
            for (int e = 0; e < kMr * kNr; e += 16) {
                const __m512i x = _mm512_load_si512(acc + e);
                events += __builtin_popcount(_mm512_cmpeq_epi32_mask(x, hi) |
                                             _mm512_cmpeq_epi32_mask(x, lo));
                const __m512 f = _mm512_cvtepi32_ps(x);
                _mm512_store_ps(sum + e, p0 == 0 ? f : _mm512_add_ps(_mm512_load_ps(sum + e), f));
            }
        }
    }
    if constexpr (last_in_registers) {
        const TileRegs t = chain_8x32_regs<NV, mode == Mode::f32_rows>(
            a_at(tiled_end), args.a_row_stride, b + tiled_end * kNrv, kp - tiled_end, pf,
            args.prefetch_stride);
        if (tiled_end == 0)
            store_f32_tile<NV>(args, [&](int i, int v) { return t.v[i][v]; });
        else
            store_f32_tile<NV>(args, [&](int i, int v) {
                return _mm512_add_ps(t.v[i][v], _mm512_load_ps(sum + i * kNr + 16 * v));
            });
        return;
    }
    if constexpr (mode == Mode::f32_count) *args.events += events;
    if constexpr (mode == Mode::s32) {
        for (int i = 0; i < kMr; ++i)
            for (int v = 0; v < NV; ++v) {
                int32_t* c = static_cast<int32_t*>(args.c) + i * args.ldc + 16 * v;
                const __m512i x = _mm512_load_si512(acc + i * kNr + 16 * v);
                _mm512_storeu_si512(c,
                                    args.load_c ? _mm512_add_epi32(_mm512_loadu_si512(c), x) : x);
            }
    } else {
        store_f32_tile<NV>(args,
                           [&](int i, int v) { return _mm512_load_ps(sum + i * kNr + 16 * v); });
    }
}

// ---- s16 packers ----

// x rounded to nearest at 2^shift, ties away from zero (as round_shift_s16). |x| is taken as
// unsigned, so -32768 is handled too.
inline __m512i round_shift(__m512i x, int shift) {
    if (shift == 0) return x;
    const __m512i mag = _mm512_srl_epi16(
        _mm512_add_epi16(_mm512_abs_epi16(x),
                         _mm512_set1_epi16(static_cast<int16_t>(1 << (shift - 1)))),
        _mm_cvtsi32_si128(shift));
    return _mm512_mask_sub_epi16(mag, _mm512_movepi16_mask(x), _mm512_setzero_si512(), mag);
}
inline __m128i round_shift(__m128i x, int shift) {
    if (shift == 0) return x;
    const __m128i mag = _mm_srl_epi16(
        _mm_add_epi16(_mm_abs_epi16(x), _mm_set1_epi16(static_cast<int16_t>(1 << (shift - 1)))),
        _mm_cvtsi32_si128(shift));
    return _mm_mask_sub_epi16(mag, _mm_movepi16_mask(x), _mm_setzero_si128(), mag);
}

// The k-contiguous packer prefetches two cache lines ahead along each row.
constexpr int64_t kPrefetchAheadBytes = 128;

// Mask of the first `count` (clamped to 0..32) int16 elements.
inline __mmask32 first_n(int64_t count) {
    if (count >= 32) return ~__mmask32{0};
    return count <= 0 ? 0 : static_cast<__mmask32>((1u << count) - 1);
}

// out[j] lane i = in[i] lane j, for 16 x 16 dwords.
inline void transpose16x16(__m512i r[16]) {
    __m512i a[16], b[16];
    for (int i = 0; i < 8; ++i) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // b[4i + c], lane L: column 4L + c of rows 4i .. 4i+3
        b[4 * i + 0] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    for (int c = 0; c < 4; ++c) {
        const __m512i p0 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0x44);
        const __m512i p1 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0xEE);
        const __m512i q0 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0x44);
        const __m512i q1 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0xEE);
        r[c] = _mm512_shuffle_i32x4(p0, q0, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(p0, q0, 0xDD);
        r[8 + c] = _mm512_shuffle_i32x4(p1, q1, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(p1, q1, 0xDD);
    }
}

// Lane-group vectors for the statistics: 16 lanes (zmm) for W = 32, 8 lanes (ymm) for W = 8.
struct Zmm16 {
    using V = __m512i;
    static V zero() { return _mm512_setzero_si512(); }
    static V one() { return _mm512_set1_epi32(1); }
    static V load(const int16_t* p) { return _mm512_load_si512(p); }
    static V madd(V x) { return _mm512_madd_epi16(x, x); }
    static V srl(V x) { return _mm512_srli_epi32(x, kStatShift); }
    static V add(V x, V y) { return _mm512_add_epi32(x, y); }
    static V max(V x, V y) { return _mm512_max_epu32(x, y); }
    static uint32_t hmax(V x) { return _mm512_reduce_max_epu32(x); }
};
struct Ymm8 {  // W = 8 from level 1 up (levels 0 and 1 run on zmm, norm_levels_avx512_w8)
    using V = __m256i;
    static V zero() { return _mm256_setzero_si256(); }
    static V add(V x, V y) { return _mm256_add_epi32(x, y); }
    static V max(V x, V y) { return _mm256_max_epu32(x, y); }
    static uint32_t hmax(V x) {
        alignas(32) uint32_t t[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(t), x);
        return *std::max_element(t, t + 8);
    }
};

// The higher levels from the level-3 sums of `groups` blocks of 8 pairs, halving `top` in place.
template <class T, class V>
void upper_levels(V* top, int64_t groups, int nl, uint32_t* best) {
    for (int level = 4; level < nl; ++level) {
        V mx = T::zero();
        const int64_t n = ceil_div(groups, 2);
        for (int64_t q = 0; q < n; ++q) {
            top[q] = 2 * q + 1 < groups ? T::add(top[2 * q], top[2 * q + 1]) : top[2 * q];
            mx = T::max(mx, top[q]);
        }
        groups = n;
        best[level] = std::max(best[level], T::hmax(mx));
    }
}

// norm_levels_avx512 (below) for W = 8 (A micro-panels): a pair of 8 rows is 8 lanes, so each zmm
// holds two pairs: level 0 runs on 16 lanes and level 1 is the sum of the two halves; levels 2..
// run on 8 lanes. Half the instructions of doing levels 0 and 1 on ymm.
void norm_levels_avx512_w8(const int16_t* panel, int64_t kp, uint64_t* levels) {
    constexpr int kGroup = 8;  // pairs per level-3 block: 4 zmm
    const int nl = norm_levels(kp);
    const __m512i one = _mm512_set1_epi32(1);
    uint32_t best[kMaxStatLevels] = {};
    __m256i top[kMaxStatPairs / kGroup];
    __m512i m0 = _mm512_setzero_si512();
    __m256i m1 = _mm256_setzero_si256(), m2 = m1, m3 = m1;
    int64_t groups = 0;
    for (int64_t c = 0; c < kp; c += kGroup, ++groups) {
        // Lanes of pairs at or past kp stay 0; only the last group has any.
        const bool full = c + kGroup <= kp;
        __m256i l1[4];
        for (int t = 0; t < 4; ++t) {
            __m512i w;
            if (full) {
                const __m512i x =
                    _mm512_loadu_si512(panel + (c + 2 * t) * 16);  // panels: 32-byte aligned
                w = _mm512_add_epi32(_mm512_srli_epi32(_mm512_madd_epi16(x, x), kStatShift), one);
            } else {
                const int64_t valid = std::clamp<int64_t>(kp - (c + 2 * t), 0, 2);  // pairs here
                const __mmask16 m = valid == 2 ? 0xFFFF : valid == 1 ? 0x00FF : 0;
                const __m512i x = _mm512_maskz_loadu_epi32(m, panel + (c + 2 * t) * 16);
                w = _mm512_maskz_add_epi32(
                    m, _mm512_srli_epi32(_mm512_madd_epi16(x, x), kStatShift), one);
            }
            m0 = _mm512_max_epu32(m0, w);
            l1[t] = _mm256_add_epi32(_mm512_castsi512_si256(w), _mm512_extracti64x4_epi64(w, 1));
            m1 = _mm256_max_epu32(m1, l1[t]);
        }
        const __m256i l2a = _mm256_add_epi32(l1[0], l1[1]), l2b = _mm256_add_epi32(l1[2], l1[3]);
        m2 = _mm256_max_epu32(m2, _mm256_max_epu32(l2a, l2b));
        top[groups] = _mm256_add_epi32(l2a, l2b);
        m3 = _mm256_max_epu32(m3, top[groups]);
    }
    const uint32_t tree[4] = {_mm512_reduce_max_epu32(m0), Ymm8::hmax(m1), Ymm8::hmax(m2),
                              Ymm8::hmax(m3)};
    for (int level = 0; level < std::min(nl, 4); ++level) best[level] = tree[level];
    upper_levels<Ymm8>(top, groups, nl, best);
    for (int l = 0; l < nl; ++l) levels[l] = uint64_t{best[l]} << kStatShift;
}

// The statistics of kMr = 8 unpacked rows (row r at src + r * ld, kp pairs): the numbers
// norm_levels_avx512_w8 gives for the packed panel of those rows, without packing it. Per 16 pairs
// each row's w is one zmm; a tree of even/odd lane sums over two vectors at a time halves the
// vectors at each level, so level 3 holds the 8-pair sums of all rows in one zmm (lane 2r + g:
// row r, block g).
void row_norm_levels_avx512(const int16_t* src, int64_t ld, int64_t kp, uint64_t* levels) {
    constexpr int kChunk = 16;  // pairs per zmm
    const int nl = norm_levels(kp);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, one);
    // Level 3's lanes 2r + g to g * 8 + r: rows in lanes, one ymm per 8-pair block.
    const __m512i by_block =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    uint32_t best[kMaxStatLevels] = {};
    __m256i top[kMaxStatPairs / 8];
    __m512i m[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
    int64_t groups = 0;
    for (int64_t c = 0; c < kp; c += kChunk, groups += 2) {
        // Lanes of pairs at or past kp stay 0 (an empty last block adds nothing to any level).
        const __mmask16 valid = static_cast<__mmask16>(first_n(kp - c));
        // Masked loads only at the tail: they are slow to miss the cache (these are A's first
        // reads).
        const bool full = c + kChunk <= kp;
        __m512i v[kMr];
        for (int r = 0; r < kMr; ++r) {
            const int16_t* row = src + r * ld + 2 * c;
            const __m512i x = full ? _mm512_loadu_si512(row) : _mm512_maskz_loadu_epi32(valid, row);
            v[r] = _mm512_maskz_add_epi32(
                valid, _mm512_srli_epi32(_mm512_madd_epi16(x, x), kStatShift), one);
            m[0] = _mm512_max_epu32(m[0], v[r]);
        }
        for (int level = 1, n = kMr / 2; level < 4; ++level, n /= 2)
            for (int t = 0; t < n; ++t) {
                v[t] = _mm512_add_epi32(_mm512_permutex2var_epi32(v[2 * t], even, v[2 * t + 1]),
                                        _mm512_permutex2var_epi32(v[2 * t], odd, v[2 * t + 1]));
                m[level] = _mm512_max_epu32(m[level], v[t]);
            }
        const __m512i blocks = _mm512_permutexvar_epi32(by_block, v[0]);
        top[groups] = _mm512_castsi512_si256(blocks);
        top[groups + 1] = _mm512_extracti64x4_epi64(blocks, 1);
    }
    for (int level = 0; level < std::min(nl, 4); ++level)
        best[level] = _mm512_reduce_max_epu32(m[level]);
    upper_levels<Ymm8>(top, groups, nl, best);
    for (int l = 0; l < nl; ++l) levels[l] = uint64_t{best[l]} << kStatShift;
}

// norm_levels_avx512 (below) for W = 32 (B micro-panels): two halves of 16 lanes.
void norm_levels_avx512_w32(const int16_t* panel, int64_t kp, uint64_t* levels) {
    constexpr int W = 32;
    using T = Zmm16;
    using V = typename T::V;
    constexpr int kLanes = sizeof(V) / 4, kGroup = 8, kTree = 4;  // levels 0..3 in registers
    const int nl = norm_levels(kp);
    const V one = T::one();
    uint32_t best[kMaxStatLevels] = {};
    for (int h = 0; h < W / kLanes; ++h) {
        V top[kMaxStatPairs / kGroup];
        V m[kTree] = {T::zero(), T::zero(), T::zero(), T::zero()};
        int64_t groups = 0;
        for (int64_t c = 0; c < kp; c += kGroup, ++groups) {
            V w[kGroup];
            for (int t = 0; t < kGroup; ++t)
                w[t] =
                    c + t < kp
                        ? T::add(T::srl(T::madd(T::load(panel + ((c + t) * W + h * kLanes) * 2))),
                                 one)
                        : T::zero();
            for (int t = 0; t < kGroup; ++t) m[0] = T::max(m[0], w[t]);
            for (int level = 1, n = kGroup / 2; level < kTree; ++level, n /= 2)
                for (int t = 0; t < n; ++t) {
                    w[t] = T::add(w[2 * t], w[2 * t + 1]);
                    m[level] = T::max(m[level], w[t]);
                }
            top[groups] = w[0];
        }
        for (int level = 0; level < std::min(nl, kTree); ++level)
            best[level] = std::max(best[level], T::hmax(m[level]));
        upper_levels<T>(top, groups, nl, best);  // halve the buffer of block sums
    }
    for (int l = 0; l < nl; ++l) levels[l] = uint64_t{best[l]} << kStatShift;
}

// The overflow statistics of one packed micro-panel, the same numbers as ref_norm_levels: per lane
// and pair w = (x0^2 + x1^2) >> 8, + 1 (vpmaddwd's pair sum is exact as unsigned), so that block
// sums of up to 256 pairs stay in 32-bit lanes. Levels 0..3 come from a register tree over 8 pairs;
// the level-3 sums go to a small buffer that is halved for the higher levels.
template <int W>
void norm_levels_avx512(const int16_t* panel, int64_t kp, uint64_t* levels) {
    static_assert(W == 8 || W == 32);
    if constexpr (W == 8)
        norm_levels_avx512_w8(panel, kp, levels);
    else
        norm_levels_avx512_w32(panel, kp, levels);
}

// Up to 64 bytes of one source row: `count` elements (clamped to 0..64 / sizeof(T)), zeros after.
inline __m512i load_row(const int16_t* p, int64_t count) {
    return _mm512_maskz_loadu_epi16(first_n(count), p);
}
inline __m512i load_row(const int8_t* p, int64_t count) {
    const __mmask64 m = count >= 64 ? ~__mmask64{0} : count <= 0 ? 0 : (__mmask64{1} << count) - 1;
    return _mm512_maskz_loadu_epi8(m, p);
}

// X(r, k) = src[r * ld + k]: rows hold K contiguously, so a K-group (KG = 4 / sizeof(T) values) is
// one 32-bit word and packing is a 32-bit transpose of W rows x kp words (16 x 16 at a time).
// `transform` is applied to each loaded vector (shift, unsigned offset); zeros of padding pass
// through it too, as in the reference packer.
template <typename T, int W, typename F>
void pack_k_contiguous(const T* src, int64_t ld, int64_t rows, int64_t kc, F transform, T* d) {
    constexpr int kg = 4 / sizeof(T);
    const int64_t kp = ceil_div(kc, kg);
    static_assert(W == 8 || W == 32);
    // W = 32: 16 rows x 16 K-groups per transpose. W = 8: 8 rows x 32 K-groups (two chunks of 16
    // fill the 16 input vectors; each output splits into its two 256-bit halves).
    constexpr int kRowsPer = W == 32 ? 16 : 8;
    constexpr int kGroupsPer = W == 32 ? 16 : 32;
    for (int64_t g = 0; g < W; g += kRowsPer)
        for (int64_t c0 = 0; c0 < kp; c0 += kGroupsPer) {
            __m512i r[16];
            for (int s = 0; s < 16; ++s) {
                const int64_t row = g + s % kRowsPer, k0 = kg * (c0 + 16 * (s / kRowsPer));
                _mm_prefetch(
                    reinterpret_cast<const char*>(src + row * ld + k0) + kPrefetchAheadBytes,
                    _MM_HINT_T0);
                r[s] = transform(row < rows ? load_row(src + row * ld + k0, kc - k0)
                                            : _mm512_setzero_si512());
            }
            transpose16x16(r);
            for (int t = 0; t < 16; ++t) {
                if constexpr (W == 32) {
                    if (c0 + t < kp) _mm512_store_si512(d + ((c0 + t) * W + g) * kg, r[t]);
                } else {
                    if (c0 + t < kp)
                        _mm256_store_si256(reinterpret_cast<__m256i*>(d + (c0 + t) * W * kg),
                                           _mm512_castsi512_si256(r[t]));
                    if (c0 + 16 + t < kp)
                        _mm256_store_si256(reinterpret_cast<__m256i*>(d + (c0 + 16 + t) * W * kg),
                                           _mm512_extracti64x4_epi64(r[t], 1));
                }
            }
        }
}

// X(r, k) = src[k * ld + r]: a K row holds the panel's rows contiguously; a pair interleaves two
// K rows (vpunpck{l,h}wd), then the 128-bit lanes are put back in row order. W = 32 (and the
// last W = 8 panels) packs all the micro-panels of the call together, K pair by K pair, so each
// visit of a K row reads one contiguous run (the rows are ld apart, each on its own page when ld
// is large); its stores fill whole lines, unlike W = 8's (below).
template <int W>
void pack_s16_r_contiguous(const int16_t* src, int64_t ld, int64_t rows, int64_t kc, int shift,
                           int16_t* d) {
    const int64_t kp = ceil_div(kc, 2);
    static_assert(W == 8 || W == 32);
    const int64_t panels = ceil_div(rows, W);
    const auto odd_tail = [kc](int64_t p) { return 2 * p + 1 >= kc; };  // second value a zero
    int64_t q_rest = 0;  // the panels the loop at the end packs
    if constexpr (W == 8) {
        // Four panels (32 rows) per 64-byte load of each K row: 128-bit lane L of the interleaved
        // vectors is panel q + L's pair p (rows 0..3 in lo, 4..7 in hi). Panels outside, pairs
        // inside: four sequential streams of stores. A pair fills half a line of each panel, and
        // the panels of a block start kp * 32 bytes apart, a multiple of 4 KiB for kc = 256 or
        // 512: they share one L1 set, which evicted half-written lines when every pair visited
        // every panel
        // (BM_pack_s16/a/0/0: 3.9 -> 1.0 us; bench gemm 256,64,50176,TN, 2 threads: 447 -> 570
        // GOP/s; no loss at ld = 2048, where every K row is on its own page).
        const int64_t groups = rows / (4 * W);
        for (int64_t g = 0; g < groups; ++g)
            for (int64_t p = 0; p < kp; ++p) {
                const int64_t q = 4 * g;
                const int16_t* k0 = src + 2 * p * ld + q * W;
                const __m512i x0 = round_shift(_mm512_loadu_si512(k0), shift);
                const __m512i x1 = odd_tail(p) ? _mm512_setzero_si512()
                                               : round_shift(_mm512_loadu_si512(k0 + ld), shift);
                const __m512i lo = _mm512_unpacklo_epi16(x0, x1),
                              hi = _mm512_unpackhi_epi16(x0, x1);
                const __m512i p01 =
                    _mm512_permutex2var_epi64(lo, _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0), hi);
                const __m512i p23 =
                    _mm512_permutex2var_epi64(lo, _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4), hi);
                const auto out = [&](int64_t panel) {
                    return reinterpret_cast<__m256i*>(d + (panel * kp + p) * W * 2);
                };
                _mm256_store_si256(out(q), _mm512_castsi512_si256(p01));
                _mm256_store_si256(out(q + 1), _mm512_extracti64x4_epi64(p01, 1));
                _mm256_store_si256(out(q + 2), _mm512_castsi512_si256(p23));
                _mm256_store_si256(out(q + 3), _mm512_extracti64x4_epi64(p23, 1));
            }
        q_rest = 4 * groups;
    }
    for (int64_t p = 0; p < kp; ++p)
        for (int64_t q = q_rest; q < panels; ++q) {
            const int16_t* k0 = src + 2 * p * ld + q * W;
            int16_t* out = d + (q * kp + p) * W * 2;
            const int64_t rq = rows - q * W;
            if constexpr (W == 32) {
                // Masked loads only at the edge: they are slow to miss the cache on Zen 4.
                const __mmask32 m = first_n(rq);
                const bool full = rq >= W;
                const __m512i x0 = round_shift(
                    full ? _mm512_loadu_si512(k0) : _mm512_maskz_loadu_epi16(m, k0), shift);
                const __m512i x1 = odd_tail(p)
                                       ? _mm512_setzero_si512()
                                       : round_shift(full ? _mm512_loadu_si512(k0 + ld)
                                                          : _mm512_maskz_loadu_epi16(m, k0 + ld),
                                                     shift);
                const __m512i lo = _mm512_unpacklo_epi16(x0, x1),
                              hi = _mm512_unpackhi_epi16(x0, x1);
                const __m512i first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
                const __m512i second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
                _mm512_store_si512(out, _mm512_permutex2var_epi64(lo, first, hi));
                _mm512_store_si512(out + 32, _mm512_permutex2var_epi64(lo, second, hi));
            } else {
                const __mmask8 m = static_cast<__mmask8>(first_n(rq));
                const __m128i x0 = round_shift(_mm_maskz_loadu_epi16(m, k0), shift);
                const __m128i x1 = odd_tail(p)
                                       ? _mm_setzero_si128()
                                       : round_shift(_mm_maskz_loadu_epi16(m, k0 + ld), shift);
                _mm_store_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(x0, x1));
                _mm_store_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpackhi_epi16(x0, x1));
            }
        }
}

template <int W>
void pack_s16(const int16_t* src, int64_t ld, bool k_contiguous, int64_t rows, int64_t kc,
              int shift, int16_t* dst, uint64_t* stats, int32_t*, int64_t) {
    const int64_t kp = ceil_div(kc, 2);
    const int nl = norm_levels(kp);
    if (!k_contiguous) pack_s16_r_contiguous<W>(src, ld, rows, kc, shift, dst);
    for (int64_t q = 0; q * W < rows; ++q) {
        int16_t* d = dst + q * kp * W * 2;
        if (k_contiguous)
            pack_k_contiguous<int16_t, W>(
                src + q * W * ld, ld, std::min<int64_t>(W, rows - q * W), kc,
                [shift](__m512i x) { return round_shift(x, shift); }, d);
        if (stats != nullptr) norm_levels_avx512<W>(d, kp, stats + q * nl);
    }
}

// Blocking for Zen 4 (32 KiB L1D, 1 MiB L2 per core, 32 MiB L3), measured on the conv shapes:
// kc = 512 (the limit of the statistics): a B micro-panel is 32 KiB, read from L1/L2 by every tile
// of an A block, and C is read and written once per 512 K values; mc = 128: the A block (128 KiB)
// stays in L2 and tall BPROP shapes (M >= 1152) ran 5-15% faster than with 256 or 512; nc = 2048:
// the B block (2 MiB) lives in L3 and is packed while it is first used.
constexpr GemmContext<int16_t> kS16{
    "avx512_vnni",
    Isa::avx512_vnni,
    kMr,
    kNr,
    2,
    /*mc=*/128,
    /*kc=*/512,
    /*nc=*/2048,
    pack_s16<kMr>,
    pack_s16<kNr>,
    ukernel_8x32<false, Mode::f32>,
    ukernel_8x32<false, Mode::f32_count>,
    ukernel_8x32<false, Mode::s32>,
    kNr / 2,
    ukernel_8x32<false, Mode::f32, 1>,
    ukernel_8x32<false, Mode::s32, 1>,
    nullptr,
    nullptr,
    row_norm_levels_avx512,
    ukernel_8x32<false, Mode::f32_rows>,
    ukernel_8x32<false, Mode::f32_rows, 1>,
};

// ---- s8 packers ----

// X(r, k) = src[k * ld + r]: a K-group interleaves 4 K rows bytewise (vpunpck{l,h}bw, then
// vpunpck{l,h}wd), then the 128-bit lanes are put back in row order. A (offset) stores a + 128 as
// an unsigned byte (a ^ 0x80), padding included, as the reference does.
template <int W, bool offset>
void pack_s8_r_contiguous(const int8_t* src, int64_t ld, int64_t rows, int64_t kc, int8_t* d) {
    const int64_t kp = ceil_div(kc, 4);
    static_assert(W == 8 || W == 32);
    const int64_t panels = ceil_div(rows, W);
    // W = 8 writes half a line of a panel per K-group, and the panels start kp * 32 bytes apart
    // (for kc = 1024 a multiple of 4 KiB: one L1 set), so panels go outside, as in
    // pack_s16_r_contiguous; W = 32
    // writes two whole lines, and K rows outside read each K row once.
    const int64_t outer = W == 8 ? panels : kp, inner = W == 8 ? kp : panels;
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            const int64_t p = W == 8 ? i : o, q = W == 8 ? o : i;
            const int8_t* k0 = src + 4 * p * ld + q * W;
            int8_t* out = d + (q * kp + p) * W * 4;
            const int64_t rq = rows - q * W;
            if constexpr (W == 32) {
                __m256i x[4];
                for (int g = 0; g < 4; ++g) {
                    x[g] = 4 * p + g < kc ? _mm256_maskz_loadu_epi8(first_n(rq), k0 + g * ld)
                                          : _mm256_setzero_si256();
                    if constexpr (offset)
                        x[g] = _mm256_xor_si256(x[g], _mm256_set1_epi8(static_cast<char>(0x80)));
                }
                const __m256i t01lo = _mm256_unpacklo_epi8(x[0], x[1]),
                              t01hi = _mm256_unpackhi_epi8(x[0], x[1]);
                const __m256i t23lo = _mm256_unpacklo_epi8(x[2], x[3]),
                              t23hi = _mm256_unpackhi_epi8(x[2], x[3]);
                // u0: rows 0..3 | 16..19, u1: 4..7 | 20..23, u2: 8..11 | 24..27, u3: 12..15
                // | 28..31
                const __m256i u0 = _mm256_unpacklo_epi16(t01lo, t23lo),
                              u1 = _mm256_unpackhi_epi16(t01lo, t23lo);
                const __m256i u2 = _mm256_unpacklo_epi16(t01hi, t23hi),
                              u3 = _mm256_unpackhi_epi16(t01hi, t23hi);
                auto* o = reinterpret_cast<__m256i*>(out);
                _mm256_store_si256(o + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
                _mm256_store_si256(o + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
                _mm256_store_si256(o + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
                _mm256_store_si256(o + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
            } else {
                const auto m = static_cast<__mmask16>(first_n(std::min<int64_t>(rq, W)));
                __m128i x[4];
                for (int g = 0; g < 4; ++g) {
                    x[g] =
                        4 * p + g < kc ? _mm_maskz_loadu_epi8(m, k0 + g * ld) : _mm_setzero_si128();
                    if constexpr (offset)
                        x[g] = _mm_xor_si128(x[g], _mm_set1_epi8(static_cast<char>(0x80)));
                }
                const __m128i t01 = _mm_unpacklo_epi8(x[0], x[1]),
                              t23 = _mm_unpacklo_epi8(x[2], x[3]);
                _mm_store_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(t01, t23));
                _mm_store_si128(reinterpret_cast<__m128i*>(out + 16), _mm_unpackhi_epi16(t01, t23));
            }
        }
}

// A (is_a): offset to unsigned. B: column sums for the compensation, one vpdpbusd with a vector of
// ones per K-group and 16 columns (sums of 4 signed bytes per lane).
template <int W, bool is_a>
void pack_s8(const int8_t* src, int64_t ld, bool k_contiguous, int64_t rows, int64_t kc, int,
             int8_t* dst, uint64_t*, int32_t* col_sums, int64_t sum_kp) {
    const int64_t kp = ceil_div(kc, 4);
    if (!k_contiguous) pack_s8_r_contiguous<W, is_a>(src, ld, rows, kc, dst);
    for (int64_t q = 0; q * W < rows; ++q) {
        int8_t* d = dst + q * kp * W * 4;
        if (k_contiguous)
            pack_k_contiguous<int8_t, W>(
                src + q * W * ld, ld, std::min<int64_t>(W, rows - q * W), kc,
                [](__m512i x) {
                    return is_a ? _mm512_xor_si512(x, _mm512_set1_epi8(static_cast<char>(0x80)))
                                : x;
                },
                d);
        if constexpr (!is_a) {
            static_assert(is_a || W % 16 == 0);
            if (col_sums == nullptr) continue;
            const __m512i ones = _mm512_set1_epi8(1);
            const int64_t runs = ceil_div(kp, sum_kp);
            for (int64_t run = 0; run < runs; ++run)
                for (int h = 0; h < W / 16; ++h) {
                    __m512i sum = _mm512_setzero_si512();
                    for (int64_t p = run * sum_kp; p < std::min(kp, (run + 1) * sum_kp); ++p)
                        sum = _mm512_dpbusd_epi32(sum, ones,
                                                  _mm512_load_si512(d + (p * W + 16 * h) * 4));
                    _mm512_storeu_si512(col_sums + (q * runs + run) * W + 16 * h, sum);
                }
        }
    }
}

constexpr GemmContext<int8_t> kS8{
    "avx512_vnni",
    Isa::avx512_vnni,
    kMr,
    kNr,
    4,
    /*mc=*/128,
    /*kc=*/1024,  // a B micro-panel is 32 KiB, as for s16
    /*nc=*/2048,
    pack_s8<kMr, true>,
    pack_s8<kNr, false>,
    ukernel_8x32<true, Mode::f32>,
    nullptr,
    ukernel_8x32<true, Mode::s32>,
    kNr / 2,
    ukernel_8x32<true, Mode::f32, 1>,
    ukernel_8x32<true, Mode::s32, 1>,
    ukernel_8x32<true, Mode::f32_blocked>,
    ukernel_8x32<true, Mode::f32_blocked, 1>,
};

}  // namespace

const GemmContext<int16_t>& s16_context_avx512_vnni() {
    return kS16;
}

const GemmContext<int8_t>& s8_context_avx512_vnni() {
    return kS8;
}

}  // namespace dfp::kernels
