// Internal to the GEMM: what one ISA contributes (packers, micro-kernels, blocking), the packed
// layout they share, and the per-ISA registries. The driver (gemm.cpp) only sees this interface.
//
// Packed layout. A dot instruction reads KG consecutive K values of one row (A) or one column (B)
// from one 32-bit lane: KG = 2 for s16 (vpdpwssd, vpmaddwd), KG = 4 for s8 (vpdpbusd). A block of
// `rows` rows (rows of op(A), or columns of op(B)) and kc K values is packed as micro-panels of W
// rows (W = MR for A, NR for B), each a kp x W array of KG-groups, kp = ceil(kc / KG):
//
//   micro-panel q (rows qW .. qW+W-1), s16 (KG = 2), W = 4 drawn:
//
//          lane:   r0       r1       r2       r3          one 32-bit lane = (k, k+1) of one row
//   pair 0      [x00 x01][x10 x11][x20 x21][x30 x31]      <- one vector load of B (W = NR), or
//   pair 1      [x02 x03][x12 x13][x22 x23][x32 x33]         W broadcasts of A (W = MR)
//   ...
//   pair kp-1   [...                              ]       odd kc: the last x?,kc is a zero
//
//   micro-panels follow each other: [panel 0][panel 1]...; rows >= `rows` are zero-filled, so a
//   micro-kernel always runs a full MR x NR tile and the driver copies out the valid part.
//
// Statistics (s16, for the overflow rule): for each micro-panel, levels[l] for l = 0..L-1 is
//   2^8 * max over lanes r and over aligned blocks of 2^l pairs of  sum_{pairs p in block} w_rp,
//   w_rp = floor((x_r,2p^2 + x_r,2p+1^2) / 2^8) + 1,
// an upper bound of the block's squared L2 norm (w_rp * 2^8 > the pair's squares), at most 2^-23
// above it in relative terms for full-scale data. The rounding keeps block sums of up to 256 pairs
// in 32-bit lanes, so kc <= 512. The driver proves a chain of 2^l pairs safe for a tile when
// levels_A[l] * levels_B[l] <= (2^31-1)^2 (Cauchy-Schwarz, see gemm.hpp).
// Column sums (s8 B only, for the unsigned-offset compensation): per micro-panel, W int32 sums of
// the column over each run of sum_kp K-groups of the block (one run: the whole block; block-scaled
// operands: one run per exponent block), run-major: [panel][run][W].
#pragma once

#include <cstdint>

#include "base/isa.hpp"

namespace dfp::kernels {

constexpr int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}
constexpr int64_t round_up(int64_t a, int64_t b) {
    return ceil_div(a, b) * b;
}

// The statistics' rounding (see above) and the largest block they cover.
constexpr int kStatShift = 8;
constexpr int64_t kMaxStatPairs = 256;
constexpr int kMaxStatLevels = 9;  // blocks of 1 .. 256 pairs

// Number of statistics levels for kp pairs: blocks of 1, 2, 4, ... up to the first >= kp.
constexpr int norm_levels(int64_t kp) {
    int l = 1;
    while ((int64_t{1} << (l - 1)) < kp) ++l;
    return l;
}

// Packs rows [0, rows) x K [0, kc) of a matrix X, X(r, k) = src[r * ld + k] when k_contiguous,
// else src[k * ld + r], into ceil(rows / W) micro-panels at dst (layout above). `shift` (s16 only)
// rounds to nearest at 2^shift, ties away from zero. `stats` (may be null) receives norm_levels(kp)
// values per micro-panel; `col_sums` (may be null) ceil(kp / sum_kp) x W sums per micro-panel.
template <typename T>
using PackFn = void (*)(const T* src, int64_t ld, bool k_contiguous, int64_t rows, int64_t kc,
                        int shift, T* dst, uint64_t* stats, int32_t* col_sums, int64_t sum_kp);

// The statistics of MR rows X(r, k) = src[r * ld + k], r < MR, k < 2 * kp (see above): the
// norm_levels(kp) values pack_a would give for their micro-panel.
template <typename T>
using RowStatsFn = void (*)(const T* src, int64_t ld, int64_t kp, uint64_t* levels);

struct UkernelArgs {
    int64_t kp = 0;           // K-groups in this block
    int64_t chain = 0;        // K-groups per INT32 chain (FP32 output); the last may be shorter
    const void* a = nullptr;  // packed A micro-panel, or (f32_rows kernels) A's first row
    int64_t a_row_stride = 0;  // f32_rows kernels: bytes from one row of A to the next
    const void* b = nullptr;  // packed B micro-panel
    const int32_t* b_col_sums = nullptr;  // s8: compensation, NR values per chain (block-scaled)
    // Block-scaled output (s8): per chain c, row i, column j the INT32 chain is scaled by
    // a_chain_scale[c * MR + i] * b_chain_scale[c * NR + j] (2^(eA + eB) of that K block) and
    // summed in FP32 with one FMA per chain; row_scale and col_scale are then 1.
    const float* a_chain_scale = nullptr;
    const float* b_chain_scale = nullptr;
    void* c = nullptr;  // float or int32_t, MR x NR tile at c, leading dimension ldc
    int64_t ldc = 0;
    const float* row_scale = nullptr;  // FP32 output: 2^(eA_i + shift) for the MR rows
    const float* col_scale = nullptr;  // and 2^(eB_j + shift) for the NR columns
    bool load_c = false;               // add to the tile of C, else overwrite it
    // FP32 output: NR values added to every row of the tile after the product (and the old C with
    // load_c), or null. The driver passes it with the first K block only.
    const float* bias = nullptr;
    // FP32 output: the tile is max(0, ...) after the bias (the last K block only). NaN and -0 pass.
    bool relu = false;
    int64_t* events = nullptr;         // count mode: saturated chain results are added here
    // A hint: one cache line to prefetch into L2 per K-group, at prefetch + p * prefetch_stride
    // (bytes). The driver points it at the source of the B micro-panels it packs next, then at
    // that of the next A block (the activations of a 1x1 convolution stream from memory).
    const char* prefetch = nullptr;
    int64_t prefetch_stride = 0;
};
using Ukernel = void (*)(const UkernelArgs& args);

// One ISA's contribution for one input type. Blocking: kc K values per block (a multiple of 2 *
// KG * 16), mc rows of A per packed A block (a multiple of mr), nc columns of B per packed B block
// (a multiple of nr).
template <typename T>
struct GemmContext {
    const char* isa_name;
    Isa isa;
    int mr, nr, kg;
    int64_t mc, kc, nc;
    PackFn<T> pack_a, pack_b;
    Ukernel f32;        // FP32 output, wrapping INT32 chains
    Ukernel f32_count;  // FP32 output, saturating chains that count events; null if unsupported
    Ukernel s32;        // raw INT32 output, one wrapping chain per block
    // Optional narrow variants for the right edge of C: the same packed panels, only the first
    // nr_narrow columns of the tile computed (the rest of the tile is left as it was).
    int nr_narrow = 0;
    Ukernel f32_narrow = nullptr;
    Ukernel s32_narrow = nullptr;
    // Block-scaled FP32 output (exponents per K block, MXINT8): chains of args.chain K-groups,
    // each scaled by its own exponents. s8 only; null where unsupported.
    Ukernel f32_blocked = nullptr;
    Ukernel f32_blocked_narrow = nullptr;
    // Unpacked A (s16 with FP32 output): the micro-kernels read MR full rows of K-contiguous
    // mantissas in place (UkernelArgs::a_row_stride), and row_stats gives the overflow statistics
    // of such rows, the same numbers pack_a computes for their packed micro-panel. The driver
    // then packs only partial panels. Null where unsupported.
    RowStatsFn<T> row_stats = nullptr;
    Ukernel f32_rows = nullptr;
    Ukernel f32_rows_narrow = nullptr;
};

// Registries: every context of that ISA for the type, null where the ISA has none.
const GemmContext<int16_t>* s16_context(Isa isa);
const GemmContext<int8_t>* s8_context(Isa isa);

// The scalar twins at a given micro-kernel shape, so tests can compare a fast context's kernels
// bit for bit with the reference on the same packed panels. Returns null for a shape not built.
const GemmContext<int16_t>* s16_scalar_twin(int mr, int nr);
const GemmContext<int8_t>* s8_scalar_twin(int mr, int nr);

// Per-ISA entry points (defined in each ISA folder).
const GemmContext<int16_t>& s16_context_avx512_vnni();
const GemmContext<int8_t>& s8_context_avx512_vnni();
const GemmContext<int16_t>& s16_context_avx2();

}  // namespace dfp::kernels
