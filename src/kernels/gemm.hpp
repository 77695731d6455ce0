// The integer GEMM of dfptrain: C = op(A) * op(B) (optionally + C) with DFP16 (int16) or DFP8
// (int8) mantissas, INT32 accumulation and FP32 or raw INT32 output. One driver (gemm.cpp) packs
// panels, blocks for the caches and threads; per-ISA micro-kernels (avx512_vnni/, avx2/, and the
// scalar reference) only multiply packed panels. Row-major storage throughout.
//
// Overflow rule (s16 inputs, FP32 output, OverflowMode::proven, the default):
//   The K dimension is cut into chains of L K-pairs; each chain is summed in INT32, converted to
//   FP32 and added to an FP32 accumulator. For every KC block and every MR x NR tile the driver
//   takes the longest L = 2^l such that, for every aligned chain c of that length,
//       max_i ||a_i,c||_2^2  *  max_j ||b_j,c||_2^2  <=  (2^31 - 1)^2
//   (i over the MR rows of the A micro-panel, j over the NR columns of the B micro-panel; the
//   maxima over all chains of the block are computed while packing, as integer upper bounds that
//   round each pair's squares up to a multiple of 2^8: see gemm_context.hpp).
//   By Cauchy-Schwarz |sum_{k in c} a_ik b_kj| <= ||a_i,c||_2 ||b_j,c||_2, and the same bound holds
//   for every prefix of the chain, so no INT32 partial sum can wrap. L = 1 pair is always safe for
//   mantissas in [-32767, 32767] (2 * 32767^2 < 2^31); a mantissa -32768 that makes even one pair
//   unsafe is refused with a dfp::Error.
// Raw INT32 output is exact or refused: it needs input_shift 0 and a proof, from the full-K row and
// column norms, that every |C_ij| (plus the old C when accumulating) fits in INT32; the INT32
// chains then wrap harmlessly (two's-complement sums are exact modulo 2^32 when the final sum
// fits).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "base/isa.hpp"

namespace dfp::kernels {

// How an operand enters the product: as stored, or transposed.
enum class Op { n, t };

// One operand: row-major mantissas of the *stored* matrix, its leading dimension (elements between
// rows), op, and exponents: value = mantissa * 2^e. `exponents` holds one value (per tensor), or
// one per row of op(A) (A) / one per column of op(B) (B). Empty means exponent 0. Raw INT32 output
// ignores exponents (its exponent is the caller's eA + eB).
// A stored matrix that is not in memory but produced block by block while the GEMM packs it:
// `fill` writes stored rows [row0, row0 + rows) x columns [col0, col0 + cols), row-major with
// leading dimension ld >= cols, into dst (columns [cols, ld) of each row are the GEMM's). The
// GEMM's threads call it concurrently, so it must be thread-safe. Convolutions use it to lower
// their input as they go instead of through a full im2col buffer (nn/conv_lowering.hpp): the
// blocks then live in L2 only.
// `region` (optional) gives the memory that filling stored rows [row0, row0 + rows) reads, as one
// byte range: the GEMM prefetches it for the next block while the current one computes.
template <typename T>
struct BlockSource {
    using Fill = void (*)(const void* context, int64_t row0, int64_t rows, int64_t col0,
                          int64_t cols, T* dst, int64_t ld);
    using Region = std::pair<const char*, int64_t> (*)(const void* context, int64_t row0,
                                                       int64_t rows);
    Fill fill = nullptr;
    const void* context = nullptr;
    Region region = nullptr;
};

// Block-scaled operands (MXINT8, s8 with FP32 output only): with k_block > 0 the exponents vary
// along K too, one per row of op(A) (column of op(B)) and block of k_block consecutive K values,
// at exponents[r * ceil(K / k_block) + K / k_block]. k_block is a power of two from 4 to 128
// (MX uses 32); both operands use the same k_block when both are block-scaled. Each block's INT32
// sum is then scaled by its own 2^(eA + eB) and added in FP32 (one FMA per block and element).
template <typename T>
struct DfpMatrix {
    const T* data = nullptr;  // unused when `source` is set
    int64_t ld = 0;           // with `source`: the stored matrix's column count
    Op op = Op::n;
    std::span<const int> exponents = {};
    BlockSource<T> source = {};  // FP32 output only
    int k_block = 0;             // 0: exponents per tensor or per row/column, as above
};

enum class OverflowMode {
    // Default. INT32 chains as long as the Cauchy-Schwarz bound on the packed data proves safe
    // (capped by max_chain_pairs): overflow cannot happen.
    proven,
    // For experiments, like the paper's code: fixed chains of max_chain_pairs K-pairs on the
    // saturating vpdpwssds, no proof; GemmReport::overflow_events counts the chain results (one
    // per output element and chain) that ended at an INT32 saturation limit. s16 only.
    count,
};

// Default right-shift of both s16 inputs while packing. A shift s rounds each mantissa to nearest
// (ties away from zero) at 2^s and adds s to its exponent, so the FP32 result keeps its scale and
// loses the s low bits of each input. Measured on the benchmark shapes (normal data, the paper's
// exponent rule with s = 0): shifts 0 and 2 run at the same speed within noise (the data-derived
// chains are already 16-64 pairs at 15 bits, so spills cost little), while the error against FP32
// is 1.0e-4 with shift 0 and 4.6e-4 with shift 2 (the paper's code). Hence 0.
inline constexpr int kDefaultInputShift = 0;
// Default cap on the INT32 chain, in K-pairs (proven mode: an upper bound, rounded down to a power
// of two; count mode: the fixed chain length).
inline constexpr int64_t kDefaultMaxChainPairs = 1 << 20;

// GemmOptions::rows_done hands C over in blocks of this many rows, from row 0.
inline constexpr int64_t kRowsDoneRows = 128;

struct GemmOptions {
    int input_shift = kDefaultInputShift;  // s16 only, 0..8; raw INT32 output needs 0
    OverflowMode overflow = OverflowMode::proven;
    int64_t max_chain_pairs = kDefaultMaxChainPairs;
    bool accumulate = false;  // C = op(A)op(B) + C instead of C = op(A)op(B)
    // FP32 output: N values, bias[j] added to every row of C (after the old C when accumulating),
    // in the pass that writes C, instead of a pass of its own over C (a layer's bias). The sum is
    // ((C +) first K block's product + bias) + the other K blocks' products, or ((C +) product) +
    // bias when the driver swaps the operands (few rows of C, both operands K-contiguous).
    const float* bias = nullptr;
    // FP32 output: C = max(0, the above) as the last step (a layer's fused ReLU; NaN and -0 pass,
    // as nn::relu_forward).
    bool relu = false;
    // Called once for every block of kRowsDoneRows rows of C (the last may be shorter) once they
    // are final (bias and ReLU applied), with the block's first row and row count: where the
    // threads split C by rows, on the thread that computed the block, right after, while it is in
    // that core's caches; otherwise after the product, from a parallel loop. A consumer's reduction
    // over C (a batch-norm's moments) then needs no pass of its own over memory.
    std::function<void(int64_t row0, int64_t rows)> rows_done;
    std::optional<Isa> isa =
        {};           // run this kernel family (must be <= cpu_isa()); default active_isa()
    int threads = 0;  // 0: omp_get_max_threads()
};

struct GemmReport {
    std::string kernel;           // e.g. "s16s16f32 avx512_vnni 8x32", names the micro-kernel run
    int64_t overflow_events = 0;  // OverflowMode::count only
    int64_t min_chain_pairs = 0;  // shortest INT32 chain used (FP32 output), in K-groups
    bool a_in_place = false;  // some micro-panels of op(A) (op(B) if swapped) were read unpacked
    bool swapped = false;     // run as C^T = op(B)^T op(A)^T (few rows of C, both K-contiguous)
    int64_t stolen_blocks = 0;  // A blocks run by a thread that had run out of its own rows
};

// DFP16 x DFP16 -> FP32: C[i][j] (+)= sum_k a_ik b_kj * 2^(eA_i + eB_j). C has M rows, ldc >= N.
GemmReport gemm_s16s16f32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int16_t>& a,
                          const DfpMatrix<int16_t>& b, float* c, int64_t ldc,
                          const GemmOptions& options = {});
// DFP16 x DFP16 -> raw INT32 (exact, or dfp::Error when not provably representable).
GemmReport gemm_s16s16s32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int16_t>& a,
                          const DfpMatrix<int16_t>& b, int32_t* c, int64_t ldc,
                          const GemmOptions& options = {});
// DFP8 x DFP8 on vpdpbusd: A is offset to unsigned (a + 128) while packing and the product is
// compensated with 128 * (column sums of B), so signed x signed is exact. Every KC block is one
// INT32 chain: |sum| <= KC * 255 * 128 < 2^31 for any data. input_shift and overflow are unused.
GemmReport gemm_s8s8f32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int8_t>& a,
                        const DfpMatrix<int8_t>& b, float* c, int64_t ldc,
                        const GemmOptions& options = {});
GemmReport gemm_s8s8s32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int8_t>& a,
                        const DfpMatrix<int8_t>& b, int32_t* c, int64_t ldc,
                        const GemmOptions& options = {});

}  // namespace dfp::kernels
