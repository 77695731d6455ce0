// The GEMM driver: validate, pick a context (dispatch), split C between threads, then on each
// thread Goto's loops around the micro-kernel (the BLIS pattern):
//
//   for jc in N step NC:                       B block KC x NC packed once, lives in L2/L3
//     for pc in K step KC:
//       for ic in M step MC:                   A block MC x KC packed, lives in L2
//         pack A[ic:ic+MC, pc:pc+KC] (+ norm statistics), or, for K-contiguous s16 rows,
//         only their statistics: the micro-kernels then read A where it lies
//         for jr in NC step NR:                B micro-panel KC x NR stays in L1
//           first ic only: pack B[pc:pc+KC, jr:jr+NR] (+ norm statistics / column sums)
//           for ir in MC step MR:              A micro-panels stream from L2
//             chain = overflow rule (statistics of the two micro-panels)
//             micro-kernel on a full MR x NR tile (edges: stack tile, copy out the valid part)
//
// (A block with a short K, whose time goes to writing C rather than multiplying, swaps the jr and
// ir loops after packing all its B micro-panels: C is then written row by row.)
// (C with few rows and both operands K-contiguous is computed as C^T = B A^T: see swapped().)
//
// Threads own disjoint tile ranges of C (split along the dimension with more tiles), each packs
// its own panels: no barriers; the duplicated packing of the other operand is small next to the
// multiply-adds (it is the operand with fewer tiles), except when K dwarfs M and N (weight
// gradients): then K is cut in two slices summed apart (k_slices, below). Split by rows, a thread
// that has run out takes the last A blocks of another's range (RowBlocks): with the B it packed
// for itself, as all threads pack the same B then.
#include "kernels/gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "base/error.hpp"
#include "kernels/gemm_context.hpp"

namespace dfp::kernels {
namespace {

using u128 = unsigned __int128;
constexpr uint64_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr u128 kI32MaxSquared = u128{kI32Max} * kI32Max;
constexpr int kMaxInputShift = 8;
constexpr size_t kAlign = 64;  // a cache line, and a zmm

// A per-thread scratch area that only grows, so repeated GEMMs do not fault in fresh pages.
class Scratch {
  public:
    void* get(size_t bytes) {
        if (bytes > size_) {
            std::free(ptr_);
            size_ = round_up(static_cast<int64_t>(bytes), kAlign);
            ptr_ = std::aligned_alloc(kAlign, size_);
            if (ptr_ == nullptr) size_ = 0;
        }
        return ptr_;
    }
    ~Scratch() { std::free(ptr_); }

  private:
    void* ptr_ = nullptr;
    size_t size_ = 0;
};

// Carves aligned sub-arrays out of one scratch area.
class Arena {
  public:
    template <typename U>
    void add(U** slot, int64_t count) {
        slots_.push_back({reinterpret_cast<void**>(slot), offset_});
        offset_ += round_up(count * static_cast<int64_t>(sizeof(U)), kAlign);
    }
    bool carve(Scratch& scratch) {
        char* base = static_cast<char*>(scratch.get(static_cast<size_t>(offset_)));
        if (base == nullptr) return false;
        for (const auto& s : slots_) *s.slot = base + s.offset;
        return true;
    }

  private:
    struct Slot {
        void** slot;
        int64_t offset;
    };
    std::vector<Slot> slots_;
    int64_t offset_ = 0;
};

template <typename T>
const GemmContext<T>* context_for(Isa isa);
template <>
const GemmContext<int16_t>* context_for<int16_t>(Isa isa) {
    return s16_context(isa);
}
template <>
const GemmContext<int8_t>* context_for<int8_t>(Isa isa) {
    return s8_context(isa);
}

// The ordered implementation list: fastest first, reference last; the first context that exists
// at or below the requested ISA and supports the requested mode runs.
template <typename T>
const GemmContext<T>& pick(const GemmOptions& options, bool need_count, bool need_blocked) {
    const Isa cap = options.isa.value_or(active_isa());
    if (cap > cpu_isa())
        throw Error(std::string("GemmOptions::isa: ") + isa_name(cap) +
                    " requested but this CPU supports at most " + isa_name(cpu_isa()));
    for (Isa isa : {Isa::avx512_vnni, Isa::avx512, Isa::avx2, Isa::scalar}) {
        if (isa > cap) continue;
        const GemmContext<T>* ctx = context_for<T>(isa);
        if (ctx == nullptr) continue;
        if (need_count && ctx->f32_count == nullptr) continue;  // no saturating INT32 add
        if (need_blocked && ctx->f32_blocked == nullptr) continue;
        return *ctx;
    }
    throw Error("GEMM: no kernel for this ISA and mode");  // unreachable: scalar supports all
}

int64_t rows_of(Op op, int64_t r_as_is, int64_t r_trans) {
    return op == Op::n ? r_as_is : r_trans;
}

template <typename T>
void check_operand(const char* name, const DfpMatrix<T>& x, int64_t stored_rows,
                   int64_t stored_cols, int64_t vector_len, int64_t k, bool s32_out) {
    if (x.source.fill != nullptr && s32_out)
        throw Error(std::string("GEMM operand ") + name +
                    ": a block source needs FP32 output (raw INT32 output proves its bound from "
                    "the whole stored matrix)");
    if (stored_rows > 0 && stored_cols > 0 && x.data == nullptr && x.source.fill == nullptr)
        throw Error(std::string("GEMM operand ") + name + ": null data");
    if (x.ld < std::max<int64_t>(stored_cols, 1))
        throw Error(std::string("GEMM operand ") + name + ": leading dimension " +
                    std::to_string(x.ld) + " < " + std::to_string(stored_cols) + " columns");
    if (x.k_block != 0) {
        if (sizeof(T) != 1 || s32_out)
            throw Error(std::string("GEMM operand ") + name +
                        ": block-scaled exponents (k_block) need int8 inputs and FP32 output");
        if (x.k_block < 4 || x.k_block > 128 || (x.k_block & (x.k_block - 1)) != 0)
            throw Error(std::string("GEMM operand ") + name + ": k_block " +
                        std::to_string(x.k_block) + " is not a power of two from 4 to 128");
        const int64_t expected = vector_len * ceil_div(k, x.k_block);
        if (static_cast<int64_t>(x.exponents.size()) != expected)
            throw Error(std::string("GEMM operand ") + name + ": " +
                        std::to_string(x.exponents.size()) + " exponents, expected " +
                        std::to_string(expected) + " (one per row and block of " +
                        std::to_string(x.k_block) + " K values)");
        return;
    }
    const auto e = x.exponents.size();
    if (!s32_out && e > 1 && static_cast<int64_t>(e) != vector_len)
        throw Error(std::string("GEMM operand ") + name + ": " + std::to_string(e) +
                    " exponents, expected 1 or " + std::to_string(vector_len));
}

// 2^(e + shift) as FP32, or dfp::Error naming the operand when it is outside the FP32 range.
float pow2_scale(const char* name, int e, int shift) {
    constexpr int kMinExp = -149, kMaxExp = 127;  // smallest subnormal, largest normal power
    if (e + shift < kMinExp || e + shift > kMaxExp)
        throw Error(std::string("GEMM operand ") + name + ": exponent " + std::to_string(e) +
                    " (+ shift " + std::to_string(shift) + ") is outside the FP32 range");
    return std::ldexp(1.0f, e + shift);
}

// 2^(e + shift) for each of `len` rows (or columns), padded with 1 to a multiple of `tile`.
std::vector<float> scales(const char* name, std::span<const int> exponents, int64_t len, int shift,
                          int tile) {
    std::vector<float> out(static_cast<size_t>(round_up(len, tile)), 1.0f);
    if (exponents.size() <= 1) {  // one exponent: one ldexp, not one per row (a serial stretch)
        if (len > 0)
            std::fill_n(out.begin(), len,
                        pow2_scale(name, exponents.empty() ? 0 : exponents[0], shift));
        return out;
    }
    for (int64_t i = 0; i < len; ++i) {
        out[static_cast<size_t>(i)] = pow2_scale(name, exponents[static_cast<size_t>(i)], shift);
    }
    return out;
}

// Block-scaled output: 2^e of row r (or column) and K block b at [r * blocks + b], from an
// operand's exponents per K block, per row or per tensor.
template <typename T>
std::vector<float> block_scales(const char* name, const DfpMatrix<T>& x, int64_t len,
                                int64_t blocks) {
    std::vector<float> out(static_cast<size_t>(len * blocks));
    for (int64_t r = 0; r < len; ++r)
        for (int64_t b = 0; b < blocks; ++b) {
            const size_t i = static_cast<size_t>(r * blocks + b);
            const size_t e = x.exponents.size();
            const int exp = e == 0 ? 0 : x.exponents[x.k_block ? i : e == 1 ? 0 : size_t(r)];
            out[i] = pow2_scale(name, exp, 0);
        }
    return out;
}

// Largest power of two <= x (x >= 1).
int64_t floor_pow2(int64_t x) {
    int64_t p = 1;
    while (p <= x / 2) p *= 2;
    return p;
}

template <typename T, typename C>
struct Problem {
    int64_t m, n, k;
    DfpMatrix<T> a, b;
    C* c;
    int64_t ldc;
    const GemmContext<T>* ctx;
    bool s32_out, count_mode;
    int shift;
    int64_t chain_cap;  // proven: power-of-two cap; count: fixed chain
    bool accumulate;
    const float* row_scale;  // FP32 output, padded
    const float* col_scale;
    int64_t k_block;             // block-scaled output: K values per exponent block, else 0
    int64_t kblocks;             // ceil(k / k_block)
    const float* a_block_scale;  // [m][kblocks], see block_scales
    const float* b_block_scale;  // [n][kblocks]
    const float* bias;           // FP32 output: GemmOptions::bias padded to whole tiles, or null
    bool relu;                   // FP32 output: max(0, C) in the last K block's epilogue
    int64_t k_offset = 0;        // K index 0 of this problem in the operands (a K slice)
    // GemmOptions::rows_done, when the threads split C by rows (run_range calls it), else null.
    const std::function<void(int64_t, int64_t)>* rows_done = nullptr;
};

// GemmOptions::rows_done for every block of C's m rows, in parallel: when no thread computed a
// block of rows whole.
void rows_done_after(const std::function<void(int64_t, int64_t)>& rows_done, int64_t m) {
    if (!rows_done) return;
    const int64_t blocks = ceil_div(m, kRowsDoneRows);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
        rows_done(b * kRowsDoneRows, std::min(kRowsDoneRows, m - b * kRowsDoneRows));
}

// One thread's rows of C split by rows, in units of whole A blocks (run_range), for work stealing:
// the owner claims them from the front, threads that have run out from the back. Same bits as
// without: a block computes the same whichever thread runs it. A thread's share of rows can take
// longer than another's for reasons the split cannot see (on a shared machine, another process on
// its core): in ResNet-50's DFP16 step at 2 threads the first thread done waited for the other 4.8%
// of the time of the GEMMs split by rows, at random which; with stealing, 5.5-8.1% -> 3.1-3.2% of
// all GEMMs' time (the rest: K slices and N splits, which do not steal).
struct RowBlocks {
    int64_t m0 = 0, m1 = 0;         // the owner's rows
    std::atomic<uint64_t> span{0};  // units [span >> 32, span & 0xffffffff) not yet claimed
    std::atomic<bool> open{false};  // span is set: the owner is in its last pass over K blocks
    // The first unit left (owner, from the front) or the last (thief, from the back); -1: none.
    int64_t claim(bool front) {
        uint64_t s = span.load(std::memory_order_relaxed);
        for (;;) {
            const uint64_t first = s >> 32, end = s & 0xffffffffu;
            if (first >= end) return -1;
            const uint64_t next = front ? (first + 1) << 32 | end : first << 32 | (end - 1);
            if (span.compare_exchange_weak(s, next, std::memory_order_acq_rel))
                return static_cast<int64_t>(front ? first : end - 1);
        }
    }
};

struct ThreadResult {
    int64_t events = 0;
    int64_t min_chain = std::numeric_limits<int64_t>::max();
    bool a_unprovable = false, b_unprovable = false;
    bool no_memory = false;
    bool a_in_place = false;
    int64_t stolen = 0;  // A blocks of another thread's range
};

// The overflow rule for one tile: the longest power-of-two chain whose Cauchy-Schwarz bound fits.
int64_t proven_chain(const uint64_t* sa, const uint64_t* sb, int levels, int64_t cap,
                     ThreadResult& res) {
    for (int l = levels - 1; l >= 0; --l)
        if (u128{sa[l]} * sb[l] <= kI32MaxSquared) return std::min(int64_t{1} << l, cap);
    // Even one pair is unsafe: only a mantissa -32768 does that (2 * 32768^2 = 2^31). kPairMax is
    // the statistic of a pair (32767, 32767).
    constexpr uint64_t kPairMax = ((2ull * 32767 * 32767 >> kStatShift) + 1) << kStatShift;
    res.a_unprovable |= sa[0] > kPairMax;
    res.b_unprovable |= sb[0] > kPairMax;
    return 1;
}

// B micro-panels packed per call in the first A block.
constexpr int64_t kPackGroup = 4;

// The prefetch streams for the tiles computed before the next group of B micro-panels (or the next
// A block) is packed: its source lines (rows x kb of X, X as in PackFn), one per K-group of the
// micro-kernel, down a column of lines (stride ld); tile s takes line s % lines of the chunk
// s / lines of kp runs. Spread this way the reads of a strided source neither stall the packer nor
// flood the miss queues as a burst of prefetches would. Tiles past the lines needed prefetch
// nothing new.
class PrefetchPlan {
  public:
    template <typename T>
    void start(const T* src, int64_t ld, bool k_contiguous, int64_t rows, int64_t kb, int64_t kp) {
        run_ = (k_contiguous ? kb : rows) * static_cast<int64_t>(sizeof(T));
        lines_ = ceil_div(run_, kLine) + 1;  // +1: a run need not start on a line
        needed_ = lines_ * ceil_div(k_contiguous ? rows : kb, kp);
        chunk_bytes_ = kp * ld * static_cast<int64_t>(sizeof(T));
        stride_ = ld * static_cast<int64_t>(sizeof(T));
        src_ = reinterpret_cast<const char*>(src);
        s_ = line_ = chunk_ = 0;
    }
    // A contiguous range of `bytes`, as a column of lines.
    void start_range(const char* begin, int64_t bytes, int64_t kp) {
        run_ = kLine;
        lines_ = 1;
        needed_ = ceil_div(ceil_div(bytes, kLine), kp);
        chunk_bytes_ = kp * kLine;
        stride_ = kLine;
        src_ = begin;
        s_ = line_ = chunk_ = 0;
    }
    void stop() { s_ = needed_ = 0; }
    // The stream of the next tile (in tile order).
    // Returns false when the plan is done (args keep their default: the A panel, stride 0).
    bool next(UkernelArgs& args) {
        if (s_ >= needed_) return false;
        args.prefetch = src_ + chunk_ * chunk_bytes_ + std::min(line_ * kLine, run_ - 1);
        args.prefetch_stride = stride_;
        ++s_;
        if (++line_ == lines_) line_ = 0, ++chunk_;
        return true;
    }

  private:
    static constexpr int64_t kLine = 64;
    const char* src_ = nullptr;
    int64_t run_ = 0, lines_ = 1, needed_ = 0, chunk_bytes_ = 0, stride_ = 0;
    int64_t s_ = 0, line_ = 0, chunk_ = 0;
};

// The packer's view of the stored block rows [r0, r0 + rows) x columns [c0, c0 + cols) of x:
// in place, or filled into buf by the operand's source with leading dimension ld >= cols, the
// columns past cols zero.
template <typename T>
std::pair<const T*, int64_t> stored_block(const DfpMatrix<T>& x, int64_t r0, int64_t rows,
                                          int64_t c0, int64_t cols, T* buf, int64_t ld) {
    if (x.source.fill == nullptr) return {x.data + r0 * x.ld + c0, x.ld};
    x.source.fill(x.source.context, r0, rows, c0, cols, buf, ld);
    if (ld > cols)
        for (int64_t r = 0; r < rows; ++r) std::fill(buf + r * ld + cols, buf + (r + 1) * ld, T{0});
    return {buf, ld};
}

// The K block size: at most the context's kc, a multiple of `quantum`, and the blocks as even as
// possible. K = 576 with kc = 512 runs as 320 + 256 rather than 512 + 64: a short last block
// pays the C tile traffic and the micro-kernel's start-up for few multiply-adds.
int64_t balanced_kc(int64_t k, int64_t kc, int64_t quantum) {
    const int64_t blocks = ceil_div(k, kc);
    return std::min(kc, round_up(ceil_div(k, blocks), quantum));
}

// Packed B blocks for every K block are kept (and the loop over A blocks runs outside the loop
// over K blocks) when they fit in this many bytes, half of Zen 4's L2: then each tile of C is
// read and written once rather than once per K block, which is what bounds narrow-N shapes
// (convolutions with 64 output channels).
constexpr int64_t kResidentBBytes = 512 * 1024;

// Blocks of at most this many K-groups run their tiles row by row (see block(), below).
constexpr int64_t kShortKGroups = 32;

// A read in place (GemmContext::f32_rows): rows of K-contiguous s16 mantissas whose K-pairs are
// whole and need no rounding (no input shift), with the statistics taken from the rows. Whole
// pairs: an even K (no block ends inside a pair), or a filled A with any K, whose odd last block
// is filled into rows one value longer ending in the 0 that packing pads with (a 3-channel stem:
// K = 7 x 7 x 3). It spares packing A, whose transposition and stores cost as much as the
// statistics and, with few columns of B per row of A (N = 64), a sixth of the multiply-adds'
// time. A filled A keeps the fill buffer to itself: B must not be filled too.
template <typename T, typename C>
bool reads_a_in_place(const Problem<T, C>& pb) {
    const GemmContext<T>& ctx = *pb.ctx;
    return sizeof(T) == 2 && !pb.s32_out && !pb.count_mode && ctx.row_stats != nullptr &&
           ctx.f32_rows != nullptr && ctx.f32_rows_narrow != nullptr && pb.shift == 0 &&
           pb.a.op == Op::n && (pb.k % 2 == 0 || pb.a.source.fill != nullptr) &&
           (pb.a.source.fill == nullptr || pb.b.source.fill == nullptr);
}

// Computes C's rows [m0, m1) x columns [n0, n1). With `steal`: rows [m0, m1) are
// steal[self]'s, and the A blocks of it and of the other ranges are claimed through them.
template <typename T, typename C>
void run_range(const Problem<T, C>& pb, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
               ThreadResult& res, RowBlocks* steal = nullptr, int self = 0, int ranges = 0) {
    const GemmContext<T>& ctx = *pb.ctx;
    const int mr = ctx.mr, nr = ctx.nr, kg = ctx.kg;
    const bool s16 = sizeof(T) == 2;
    const int64_t kc = balanced_kc(pb.k, ctx.kc, 32 * kg);
    const int64_t kblocks = ceil_div(pb.k, kc);
    const int64_t kp_max = ceil_div(kc, kg);
    const int nl_max = norm_levels(kp_max);
    // A stolen block may be longer than this thread's own rows.
    const int64_t mc_pad = round_up(std::min(ctx.mc, steal ? pb.m : m1 - m0), mr);
    const int64_t nc_pad = round_up(std::min(ctx.nc, n1 - n0), nr);
    const bool resident =
        kblocks > 1 &&
        nc_pad * kblocks * kp_max * kg * static_cast<int64_t>(sizeof(T)) <= kResidentBBytes;
    const int64_t bslots = resident ? kblocks : 1;  // packed B blocks kept at once
    const bool sourced = pb.a.source.fill != nullptr || pb.b.source.fill != nullptr;
    // Block-scaled: one chain (and one column sum and scale per row) per exponent block.
    const bool blocked = pb.k_block > 0;
    const int64_t block_kp = blocked ? pb.k_block / kg : 0;
    const int64_t runs_max = blocked ? ceil_div(kp_max, block_kp) : 1;

    static thread_local Scratch scratch;
    T *apack = nullptr, *bpack = nullptr, *filled = nullptr;
    uint64_t *astats = nullptr, *bstats = nullptr;
    int32_t* bsums = nullptr;
    float *ascales = nullptr, *bscales = nullptr;
    C* tile = nullptr;
    Arena arena;
    arena.add(&apack, mc_pad * kp_max * kg);
    arena.add(&bpack, bslots * nc_pad * kp_max * kg);
    arena.add(&astats, mc_pad / mr * nl_max);
    arena.add(&bstats, bslots * nc_pad / nr * nl_max);
    arena.add(&bsums, bslots * nc_pad * runs_max);
    if (blocked) {
        arena.add(&ascales, mc_pad * runs_max);
        arena.add(&bscales, bslots * nc_pad * runs_max);
    }
    arena.add(&tile, int64_t{mr} * nr);
    if (sourced) arena.add(&filled, std::max(mc_pad, kPackGroup * nr) * kc);
    if (!arena.carve(scratch)) {
        res.no_memory = true;
        if (steal) steal[self].open.store(true, std::memory_order_release);  // nothing to take
        return;
    }
    const bool need_stats = s16 && !pb.s32_out && !pb.count_mode;
    // op(A)(i, k): as stored A[i][k] (k contiguous), transposed A[k][i].
    const bool an = pb.a.op == Op::n;
    // op(B)(k, j): as stored B[k][j] (j contiguous), transposed B[j][k] (k contiguous).
    const bool bt = pb.b.op == Op::t;
    const bool unpacked_a = reads_a_in_place(pb);

    // One A block (rows ic.. of a range ending at m_end, K block pb_index) against the B block of
    // columns jc..jc+nb; its tiles prefetch the source of the next B group (first A block), then
    // of the A block (next_ic, next_p) that follows in the loop order, if any (next_p < 0: none).
    auto block = [&](int64_t jc, int64_t nb, int64_t pb_index, int64_t ic, int64_t m_end,
                     int64_t next_ic, int64_t next_p) {
        const int64_t pc = pb_index * kc, sk = pb.k_offset + pc;  // sk: in the operands
        const int64_t kb = std::min(kc, pb.k - pc);
        const int64_t kp = ceil_div(kb, kg);
        const int nl = norm_levels(kp);
        const bool load_c = pb.accumulate || pc > 0;
        const int64_t slot = resident ? pb_index : 0;
        const int64_t runs = blocked ? ceil_div(kp, block_kp) : 1;
        T* bpk = bpack + slot * nc_pad * kp_max * kg;
        uint64_t* bst = bstats + slot * nc_pad / nr * nl_max;
        int32_t* bsm = bsums + slot * nc_pad * runs_max;
        float* bsc = blocked ? bscales + slot * nc_pad * runs_max : nullptr;
        const int64_t mb = std::min(ctx.mc, m_end - ic);
        const auto [asrc, lda] =
            an ? stored_block(pb.a, ic, mb, sk, kb, filled, unpacked_a ? round_up(kb, 2) : kb)
               : stored_block(pb.a, sk, kb, ic, mb, filled, mb);
        // Rows [0, packed_from) of the block are read in place, the rest packed.
        const int64_t packed_from = unpacked_a ? mb / mr * mr : 0;
        for (int64_t ir = 0; ir < packed_from; ir += mr)
            ctx.row_stats(asrc + ir * lda, lda, kp, astats + ir / mr * nl);
        res.a_in_place |= packed_from > 0;
        if (packed_from < mb)
            ctx.pack_a(asrc + (an ? packed_from * lda : packed_from), lda, an, mb - packed_from, kb,
                       pb.shift, apack + packed_from * kp * kg,
                       need_stats ? astats + packed_from / mr * nl : nullptr, nullptr, kp);
        // The scales of this block's chains, [micro-panel][chain][row], padding rows 1.
        auto chain_scales = [&](const float* table, int64_t r0, int64_t count, int64_t valid_end,
                                int w, float* out) {
            const int64_t b0 = sk / pb.k_block;
            for (int64_t q = 0; q * w < count; ++q)
                for (int64_t c = 0; c < runs; ++c)
                    for (int r = 0; r < w; ++r) {
                        const int64_t row = r0 + q * w + r;
                        out[(q * runs + c) * w + r] =
                            row < valid_end ? table[row * pb.kblocks + b0 + c] : 1.0f;
                    }
        };
        if (blocked) chain_scales(pb.a_block_scale, ic, mb, m_end, mr, ascales);
        PrefetchPlan plan, aplan;
        // Filled once per block (zeroing the struct per tile showed in profiles), per tile below.
        UkernelArgs args;
        args.kp = kp;
        args.load_c = load_c;
        // The bias goes in once: with the first K block of the problem that writes C (a K slice
        // past the first sums into its own partial buffer).
        const bool add_bias = pb.bias != nullptr && pc == 0 && pb.k_offset == 0;
        args.relu = pb.relu && pc + kb == pb.k;
        args.events = &res.events;
        if (next_p >= 0) {
            const int64_t npc = next_p * kc, nkb = std::min(kc, pb.k - npc);
            const int64_t nsk = pb.k_offset + npc, nmb = std::min(ctx.mc, m_end - next_ic);
            if (pb.a.source.fill == nullptr) {
                aplan.start(pb.a.data + (an ? next_ic * pb.a.ld + nsk : nsk * pb.a.ld + next_ic),
                            pb.a.ld, an, nmb, nkb, kp);
            } else if (pb.a.source.region != nullptr && (an ? next_ic != ic : next_p != pb_index)) {
                const auto [begin, bytes] =
                    an ? pb.a.source.region(pb.a.source.context, next_ic, nmb)
                       : pb.a.source.region(pb.a.source.context, nsk, nkb);
                aplan.start_range(begin, bytes, kp);
            }
        }
        // B is packed during the first A block, kPackGroup micro-panels at a time (a strided
        // source is then read in runs of several cache lines), right before their first use;
        // the micro-kernels computing the group before prefetch its source, so the reads
        // overlap the multiply-adds.
        const int64_t group = kPackGroup * nr;
        auto pack_group = [&](int64_t jr, int64_t jp) {
            const int64_t j = jc + jr, g = std::min(group, nb - jr);
            const auto [bsrc, ldb] = bt ? stored_block(pb.b, j, g, sk, kb, filled, kb)
                                        : stored_block(pb.b, sk, kb, j, g, filled, g);
            ctx.pack_b(bsrc, ldb, bt, g, kb, pb.shift, bpk + jr * kp * kg,
                       need_stats ? bst + jp * nl : nullptr, s16 ? nullptr : bsm + jr * runs,
                       blocked ? block_kp : kp);
            if (blocked) chain_scales(pb.b_block_scale, j, g, n1, nr, bsc + jr * runs);
            const int64_t jn = j + group;  // the next group
            if (jn < jc + nb && pb.b.source.fill == nullptr)
                plan.start(pb.b.data + (bt ? jn * pb.b.ld + sk : sk * pb.b.ld + jn), pb.b.ld, bt,
                           std::min(group, jc + nb - jn), kb, kp);
            else
                plan.stop();
        };
        auto compute_tile = [&](int64_t ir, int64_t ip, int64_t jr, int64_t jp) {
            const int64_t nv = std::min<int64_t>(nr, nb - jr);
            const int64_t mv = std::min<int64_t>(mr, mb - ir);
            const int64_t i = ic + ir, j = jc + jr;
            const bool in_place = ir < packed_from;
            if (in_place) {
                args.a = asrc + ir * lda;
                args.a_row_stride = lda * static_cast<int64_t>(sizeof(T));
            } else {
                args.a = apack + ir * kp * kg;
            }
            args.b = bpk + jr * kp * kg;
            args.b_col_sums = bsm + jr * runs;
            args.row_scale = pb.row_scale + i;
            args.col_scale = pb.col_scale + j;
            args.bias = add_bias ? pb.bias + j : nullptr;
            args.prefetch = static_cast<const char*>(args.a);
            args.prefetch_stride = 0;
            if (!(ic == m0 && plan.next(args))) aplan.next(args);
            if (blocked) {
                args.chain = block_kp;
                args.a_chain_scale = ascales + ir * runs;
                args.b_chain_scale = bsc + jr * runs;
            } else if (need_stats) {
                args.chain = proven_chain(astats + ip * nl, bst + jp * nl, nl, pb.chain_cap, res);
                res.min_chain = std::min(res.min_chain, args.chain);
            } else {
                args.chain = pb.count_mode ? pb.chain_cap : kp;
            }
            C* cij = pb.c + i * pb.ldc + j;
            const bool full = mv == mr && nv == nr;
            if (full) {
                args.c = cij;
                args.ldc = pb.ldc;
            } else {  // edge: the micro-kernel sees a full tile on the stack
                args.c = tile;
                args.ldc = nr;
                if (load_c)
                    for (int64_t r = 0; r < mv; ++r)
                        std::memcpy(tile + r * nr, cij + r * pb.ldc, sizeof(C) * nv);
            }
            // A tile at most nr_narrow wide runs the narrow variant: no multiply-adds on
            // columns that are only padding.
            const bool narrow = nv <= ctx.nr_narrow && !pb.count_mode;
            const Ukernel uk = in_place        ? (narrow ? ctx.f32_rows_narrow : ctx.f32_rows)
                               : blocked       ? (narrow ? ctx.f32_blocked_narrow : ctx.f32_blocked)
                               : pb.s32_out    ? (narrow ? ctx.s32_narrow : ctx.s32)
                               : pb.count_mode ? ctx.f32_count
                               : narrow        ? ctx.f32_narrow
                                               : ctx.f32;
            uk(args);
            if (!full)
                for (int64_t r = 0; r < mv; ++r)
                    std::memcpy(cij + r * pb.ldc, tile + r * nr, sizeof(C) * nv);
        };
        // Tile order: down each column of tiles (the B micro-panel stays in L1 while the A block
        // streams from L2), except when the block's K is short and C's traffic outweighs the
        // multiply-adds (a weight gradient with K = the batch): then along each row of tiles, so
        // C is written as MR sequential streams that the hardware prefetchers follow, instead of
        // MC rows a few lines at a time. B is then packed before the first row.
        if (kp > kShortKGroups) {
            for (int64_t jr = 0, jp = 0; jr < nb; jr += nr, ++jp) {
                if (ic == m0 && jp % kPackGroup == 0) pack_group(jr, jp);
                for (int64_t ir = 0, ip = 0; ir < mb; ir += mr, ++ip) compute_tile(ir, ip, jr, jp);
            }
        } else {
            if (ic == m0)
                for (int64_t jr = 0, jp = 0; jr < nb; jr += kPackGroup * nr, jp += kPackGroup)
                    pack_group(jr, jp);
            for (int64_t ir = 0, ip = 0; ir < mb; ir += mr, ++ip)
                for (int64_t jr = 0, jp = 0; jr < nb; jr += nr, ++jp) compute_tile(ir, ip, jr, jp);
        }
    };

    // Rows ic.. of a range ending at m_end in the last pass over K blocks, or in every pass when
    // the loop over A blocks runs outside it (B resident, or one K block).
    const bool ic_outer = resident || kblocks == 1;
    auto last_pass = [&](int64_t jc, int64_t nb, int64_t ic, int64_t m_end, int64_t next_ic) {
        for (int64_t p = ic_outer ? 0 : kblocks - 1; p < kblocks; ++p)
            if (p + 1 < kblocks)
                block(jc, nb, p, ic, m_end, ic, p + 1);
            else
                block(jc, nb, p, ic, m_end, next_ic, next_ic < m_end ? 0 : -1);
    };
    auto earlier_passes = [&](int64_t jc, int64_t nb) {
        if (ic_outer) return;
        for (int64_t p = 0; p + 1 < kblocks; ++p)
            for (int64_t ic = m0; ic < m1; ic += ctx.mc)
                if (ic + ctx.mc < m1)
                    block(jc, nb, p, ic, m1, ic + ctx.mc, p);
                else
                    block(jc, nb, p, ic, m1, m0, p + 1);
    };
    // A unit of rows: the A blocks claimed together and, when C goes to rows_done, its block.
    const int64_t unit = pb.rows_done ? kRowsDoneRows : ctx.mc;
    const bool one_b = n1 - n0 <= ctx.nc;  // then rows are final after their last pass
    // The last passes of the unit from u0 in a range ending at m_end, then rows_done; the A block
    // after the unit's is prefetched from `next`.
    auto unit_pass = [&](int64_t jc, int64_t nb, int64_t u0, int64_t m_end, int64_t next) {
        const int64_t u1 = std::min(m_end, u0 + unit);
        for (int64_t ic = u0; ic < u1; ic += ctx.mc)
            last_pass(jc, nb, ic, m_end, ic + ctx.mc < u1 ? ic + ctx.mc : next);
        if (pb.rows_done && one_b) (*pb.rows_done)(u0, u1 - u0);
    };
    if (steal == nullptr || !one_b) {
        for (int64_t jc = n0; jc < n1; jc += ctx.nc) {
            const int64_t nb = std::min(ctx.nc, n1 - jc);
            earlier_passes(jc, nb);
            for (int64_t u0 = m0; u0 < m1; u0 += unit) unit_pass(jc, nb, u0, m1, u0 + unit);
        }
        if (pb.rows_done && !one_b)
            for (int64_t u0 = m0; u0 < m1; u0 += unit) (*pb.rows_done)(u0, std::min(unit, m1 - u0));
        if (steal) steal[self].open.store(true, std::memory_order_release);  // nothing to take
        return;
    }
    // One B block: the last pass claims this range's units, then takes what is left of the
    // others' (their last passes use the same packed B as this thread's: the last K block's).
    const int64_t nb = n1 - n0;
    earlier_passes(n0, nb);
    RowBlocks& own = steal[self];
    own.span.store(static_cast<uint64_t>(ceil_div(m1 - m0, unit)), std::memory_order_relaxed);
    own.open.store(true, std::memory_order_release);
    bool packed_b = false;  // B is packed in the first A block's pass: unless another took it
    for (int64_t b; (b = own.claim(true)) >= 0;) {
        const int64_t u0 = m0 + b * unit;
        packed_b |= u0 == m0;
        unit_pass(n0, nb, u0, m1, u0 + unit);
    }
    if (!packed_b) return;
    for (int r = 1; r < ranges; ++r) {
        RowBlocks& other = steal[(self + r) % ranges];
        while (!other.open.load(std::memory_order_acquire)) std::this_thread::yield();
        for (int64_t b; (b = other.claim(false)) >= 0; ++res.stolen)
            unit_pass(n0, nb, other.m0 + b * unit, other.m1, other.m1);
    }
}

// K slices: a product whose K is far longer than M and N (a weight gradient: K is the pixels) is
// cut into two halves along K, each summed into its own C and the second added onto the first at
// the end. Threads split the slices (and the tiles within one), so each packs its share of both
// operands; split along M or N, every thread would pack all of the operand it does not split,
// which for a weight gradient is as large as the other. The slicing depends on the shape alone,
// never on the thread count, so the result does not either.
constexpr int64_t kMinSliceK = 1024;

template <typename T, typename C>
int k_slices(const Problem<T, C>& pb) {
    const bool fits = !pb.s32_out && pb.k_block == 0 && pb.k >= 2 * kMinSliceK &&
                      2 * std::max(pb.m, pb.n) <= pb.k;
    return fits ? 2 : 1;
}

template <typename T, typename C>
GemmReport run(Problem<T, C> pb, int threads) {
    const GemmContext<T>& ctx = *pb.ctx;
    const int slices = k_slices(pb);
    const int64_t tiles_m = ceil_div(pb.m, ctx.mr), tiles_n = ceil_div(pb.n, ctx.nr);
    const bool split_n = tiles_n >= tiles_m;
    const int64_t tiles = split_n ? tiles_n : tiles_m;
    const int nt = static_cast<int>(std::clamp<int64_t>(threads, 1, tiles * slices));
    // Split by rows, C goes to rows_done by the threads that compute it: in whole blocks of its.
    const bool rows_inline = pb.rows_done != nullptr && !split_n && slices == 1;
    const int64_t parts = rows_inline ? ceil_div(pb.m, kRowsDoneRows) : tiles;
    const int64_t part_rows = rows_inline ? kRowsDoneRows : ctx.mr;
    // Slice s > 0 sums into partial[s - 1], M x N, leading dimension N.
    const std::unique_ptr<C[]> partial(
        slices > 1 ? new C[static_cast<size_t>((slices - 1) * pb.m * pb.n)] : nullptr);
    const auto slice = [&](int s) {
        Problem<T, C> p = pb;
        const int64_t quantum = 32 * ctx.kg;
        const int64_t k0 = std::min(pb.k, round_up(pb.k * s / slices, quantum));
        const int64_t k1 = std::min(pb.k, round_up(pb.k * (s + 1) / slices, quantum));
        p.k_offset = k0;
        p.k = k1 - k0;  // > 0: a sliced K is at least 2 * kMinSliceK
        if (s > 0) {
            p.c = partial.get() + (s - 1) * pb.m * pb.n;
            p.ldc = pb.n;
            p.accumulate = false;
        }
        p.relu = pb.relu && slices == 1;  // else once the slices are summed, below
        p.rows_done = rows_inline ? pb.rows_done : nullptr;
        return p;
    };
    std::vector<ThreadResult> results(static_cast<size_t>(nt));
    // Split by rows in one slice: threads take each other's last A blocks (RowBlocks).
    const std::unique_ptr<RowBlocks[]> steal(!split_n && slices == 1 && nt > 1 ? new RowBlocks[nt]
                                                                               : nullptr);
    if (steal)
        for (int t = 0; t < nt; ++t) {
            steal[t].m0 = std::min(pb.m, parts * t / nt * part_rows);
            steal[t].m1 = std::min(pb.m, parts * (t + 1) / nt * part_rows);
        }
    // Thread t's share: slice t % slices with the others of that slice (all slices when alone).
    const auto share = [&](int t, bool may_steal) {
        // A result on this thread's stack: the threads' entries of `results` share cache lines,
        // and the tile loop updates its result per tile.
        ThreadResult mine;
        for (int s = nt >= slices ? t % slices : 0; s < slices; s += nt >= slices ? slices : 1) {
            const Problem<T, C> p = slice(s);
            const int members = nt >= slices ? (nt - s + slices - 1) / slices : 1;
            const int member = nt >= slices ? t / slices : 0;
            const int64_t t0 = parts * member / members, t1 = parts * (member + 1) / members;
            if (split_n)
                run_range(p, 0, p.m, t0 * ctx.nr, std::min(p.n, t1 * ctx.nr), mine);
            else
                run_range(p, std::min(p.m, t0 * part_rows), std::min(p.m, t1 * part_rows), 0, p.n,
                          mine, may_steal ? steal.get() : nullptr, t, nt);
        }
        results[static_cast<size_t>(t)] = mine;
    };
#pragma omp parallel num_threads(nt)
    {
        // A team smaller than asked (a GEMM inside a parallel region gets one thread) runs the
        // shares of the missing threads too, without stealing: a range's owner may never come.
        const int team = omp_get_num_threads();
        for (int t = omp_get_thread_num(); t < nt; t += team) share(t, team == nt);
        if (slices > 1) {
#pragma omp barrier
#pragma omp for schedule(static)
            for (int64_t i = 0; i < pb.m; ++i)
                for (int s = 1; s < slices; ++s) {
                    const C* from = partial.get() + ((s - 1) * pb.m + i) * pb.n;
                    C* to = pb.c + i * pb.ldc;
                    for (int64_t j = 0; j < pb.n; ++j) to[j] += from[j];
                    if constexpr (!std::is_same_v<C, int32_t>)
                        if (pb.relu && s + 1 == slices)
                            for (int64_t j = 0; j < pb.n; ++j) to[j] = to[j] < 0.0f ? 0.0f : to[j];
                }
        }
    }
    if (pb.rows_done && !rows_inline) rows_done_after(*pb.rows_done, pb.m);
    GemmReport report;
    report.kernel = std::string(sizeof(T) == 2 ? "s16s16" : "s8s8") +
                    (pb.s32_out ? "s32 " : "f32 ") + ctx.isa_name + " " + std::to_string(ctx.mr) +
                    "x" + std::to_string(ctx.nr);
    report.min_chain_pairs = pb.s32_out || pb.count_mode ? 0 : std::numeric_limits<int64_t>::max();
    for (const ThreadResult& r : results) {
        if (r.no_memory) throw Error("GEMM: out of memory for packing buffers");
        if (r.a_unprovable || r.b_unprovable)
            throw Error(std::string("GEMM operand ") + (r.a_unprovable ? "A" : "B") +
                        " holds the mantissa -32768: DFP16 mantissas must lie in [-32767, 32767] "
                        "(clamp symmetrically), or use input_shift >= 1");
        report.overflow_events += r.events;
        report.a_in_place |= r.a_in_place;
        report.stolen_blocks += r.stolen;
        if (!pb.s32_out && !pb.count_mode)
            report.min_chain_pairs = std::min(report.min_chain_pairs, r.min_chain);
    }
    return report;
}

// Operand swap: a product with few rows of C and both operands K-contiguous (a fully-connected
// layer's forward, C = src W^T with M = the batch) runs as C^T = B A^T into a scratch that is then
// transposed into C. The wide operand is then the A of the product, read in place, and only the
// narrow one is packed; as B, every K x NR micro-panel of the wide operand was transposed while
// packing and used by only M / MR tiles. 32 x 4096 x 9216, 2 threads: 168 -> 252 GOP/s (and
// 1 thread 83-98 -> 111-155), 64 rows 220 -> 265; from 128 rows on it is a wash.
constexpr int64_t kSwapMaxRows = 64;

// (Raw INT32 output never swaps: reading A in place needs FP32 output.)
template <typename T, typename C>
std::optional<Problem<T, C>> swapped(const Problem<T, C>& pb) {
    if (pb.m > kSwapMaxRows || pb.n <= pb.m || pb.a.op != Op::n || pb.b.op != Op::t ||
        pb.k_block != 0 || pb.a.source.fill != nullptr || pb.b.source.fill != nullptr)
        return std::nullopt;
    Problem<T, C> sw = pb;
    sw.m = pb.n;
    sw.n = pb.m;
    sw.a = pb.b;
    sw.a.op = Op::n;
    sw.b = pb.a;
    sw.b.op = Op::t;
    std::swap(sw.row_scale, sw.col_scale);
    sw.accumulate = false;
    sw.bias = nullptr;
    sw.relu = false;
    sw.rows_done = nullptr;  // the rows of C^T are C's columns: rows_done runs after the transpose
    if (!reads_a_in_place(sw)) return std::nullopt;  // then packing the wide one costs the same
    return sw;
}

// C (+)= the transpose of ct (N x M), then the bias and the ReLU: GemmOptions' order.
template <typename C>
void add_transposed(const C* ct, int64_t m, int64_t n, C* c, int64_t ldc, bool accumulate,
                    const float* bias, bool relu) {
    for (int64_t i = 0; i < m; ++i) {
        C* row = c + i * ldc;
        for (int64_t j = 0; j < n; ++j) {
            C x = ct[j * m + i];
            if (accumulate) x = row[j] + x;
            if (bias != nullptr) x += bias[j];
            if (relu && x < C{0}) x = C{0};  // NaN and -0 pass, as vmaxps(0, y)
            row[j] = x;
        }
    }
}

// Sum of squares of each row of op(A) (or column of op(B)) over the whole K: X(r, k).
template <typename T>
uint64_t max_norm2(const T* x, int64_t ld, bool k_contiguous, int64_t rows, int64_t k) {
    std::vector<uint64_t> sums(static_cast<size_t>(rows), 0);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t kk = 0; kk < k; ++kk) {
            const int64_t v = k_contiguous ? x[r * ld + kk] : x[kk * ld + r];
            sums[static_cast<size_t>(r)] += static_cast<uint64_t>(v * v);
        }
    return rows == 0 ? 0 : *std::max_element(sums.begin(), sums.end());
}

// Raw INT32 output: prove that every |C_ij| (+ |old C_ij|) fits, else refuse.
template <typename T>
void prove_s32(int64_t m, int64_t n, int64_t k, const DfpMatrix<T>& a, const DfpMatrix<T>& b,
               const int32_t* c, int64_t ldc, bool accumulate) {
    // int8 operands need no norms while K is short: |a b| <= 2^14, so |C| <= K 2^14 < 2^31 for
    // K < 2^17 (the data-dependent proof below reads both operands and costs more than the GEMM).
    constexpr int64_t kS8TrivialK = int64_t{1} << 17;
    if (sizeof(T) == 1 && !accumulate && k < kS8TrivialK) return;
    const u128 bound2 = u128{max_norm2(a.data, a.ld, a.op == Op::n, m, k)} *
                        max_norm2(b.data, b.ld, b.op == Op::t, n, k);
    uint64_t old = 0;
    if (accumulate)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j)
                old = std::max<uint64_t>(old, static_cast<uint64_t>(std::llabs(c[i * ldc + j])));
    // The bound on |new C| is sqrt(bound2) + old; compare squares exactly: (kI32Max - old)^2.
    const bool fits = old <= kI32Max && bound2 <= u128{kI32Max - old} * (kI32Max - old);
    if (!fits)
        throw Error(
            "GEMM raw INT32 output: the row/column norms of A and B over K = " + std::to_string(k) +
            " cannot prove that C fits in INT32 (Cauchy-Schwarz bound exceeds 2^31-1); "
            "use FP32 output");
}

template <typename T, typename C>
GemmReport gemm(int64_t m, int64_t n, int64_t k, const DfpMatrix<T>& a, const DfpMatrix<T>& b, C* c,
                int64_t ldc, const GemmOptions& options) {
    constexpr bool s16 = sizeof(T) == 2;
    constexpr bool s32_out = std::is_same_v<C, int32_t>;
    if (m < 0 || n < 0 || k < 0)
        throw Error("GEMM: negative size m=" + std::to_string(m) + " n=" + std::to_string(n) +
                    " k=" + std::to_string(k));
    check_operand("A", a, rows_of(a.op, m, k), rows_of(a.op, k, m), m, k, s32_out);
    check_operand("B", b, rows_of(b.op, k, n), rows_of(b.op, n, k), n, k, s32_out);
    if (a.k_block && b.k_block && a.k_block != b.k_block)
        throw Error("GEMM: operands A and B have different k_block (" + std::to_string(a.k_block) +
                    " and " + std::to_string(b.k_block) + ")");
    const int64_t k_block = std::max(a.k_block, b.k_block);
    if (m > 0 && n > 0 && c == nullptr) throw Error("GEMM output C: null data");
    if (s32_out && (options.bias != nullptr || options.relu))
        throw Error("GemmOptions::bias and relu: raw INT32 output takes neither");
    if (ldc < std::max<int64_t>(n, 1))
        throw Error("GEMM output C: leading dimension " + std::to_string(ldc) +
                    " < n = " + std::to_string(n));
    const int shift = s16 ? options.input_shift : 0;
    if (shift < 0 || shift > kMaxInputShift)
        throw Error("GemmOptions::input_shift: " + std::to_string(options.input_shift) +
                    " is outside 0.." + std::to_string(kMaxInputShift));
    if (options.max_chain_pairs < 1)
        throw Error("GemmOptions::max_chain_pairs: must be >= 1, got " +
                    std::to_string(options.max_chain_pairs));
    const bool count_mode = s16 && !s32_out && options.overflow == OverflowMode::count;
    if (s32_out && s16 && shift != 0)
        throw Error("GemmOptions::input_shift: raw INT32 output is exact only with input_shift 0");
    const GemmContext<T>& ctx = pick<T>(options, count_mode, k_block > 0);
    if (s16 && ctx.kc > 2 * kMaxStatPairs)  // a context's constant: the statistics need it
        throw Error(std::string("GEMM context ") + ctx.isa_name +
                    ": kc above the statistics' limit");
    if (kRowsDoneRows % ctx.mc != 0)  // rows_done's blocks are whole A blocks (run_range's units)
        throw Error(std::string("GEMM context ") + ctx.isa_name + ": mc does not divide " +
                    std::to_string(kRowsDoneRows));
    GemmReport empty{std::string(ctx.isa_name), 0, 0};
    if (m == 0 || n == 0) return empty;
    if (k == 0) {
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                C& x = c[i * ldc + j];
                if (!options.accumulate) x = C{0};
                if constexpr (!s32_out) {
                    if (options.bias != nullptr) x += options.bias[j];
                    if (options.relu && x < 0.0f) x = 0.0f;
                }
            }
        rows_done_after(options.rows_done, m);
        return empty;
    }
    if constexpr (s32_out) prove_s32(m, n, k, a, b, c, ldc, options.accumulate);
    // Block-scaled: every exponent goes into the chain scales, the final row/column scales are 1.
    const int64_t kblocks = k_block ? ceil_div(k, k_block) : 0;
    const std::vector<float> as = k_block ? block_scales("A", a, m, kblocks) : std::vector<float>{};
    const std::vector<float> bs = k_block ? block_scales("B", b, n, kblocks) : std::vector<float>{};
    // Padded to whole tiles of either side: a swapped product (below) reads each as the other.
    const int tile_lcm = std::lcm(ctx.mr, ctx.nr);
    const std::vector<float> rs =
        scales("A", k_block ? std::span<const int>{} : a.exponents, m, shift, tile_lcm);
    const std::vector<float> cs =
        scales("B", k_block ? std::span<const int>{} : b.exponents, n, shift, tile_lcm);
    std::vector<float> bias;  // padded: a micro-kernel reads NR values at an edge tile too
    if (options.bias != nullptr) {
        bias.assign(static_cast<size_t>(round_up(n, ctx.nr)), 0.0f);
        std::copy_n(options.bias, n, bias.begin());
    }
    Problem<T, C> pb{m,
                     n,
                     k,
                     a,
                     b,
                     c,
                     ldc,
                     &ctx,
                     s32_out,
                     count_mode,
                     shift,
                     count_mode ? options.max_chain_pairs : floor_pow2(options.max_chain_pairs),
                     options.accumulate,
                     rs.data(),
                     cs.data(),
                     k_block,
                     kblocks,
                     as.data(),
                     bs.data(),
                     options.bias != nullptr ? bias.data() : nullptr,
                     options.relu};
    if (options.rows_done) pb.rows_done = &options.rows_done;
    const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
    if (std::optional<Problem<T, C>> sw = swapped(pb)) {
        // Uninitialised, as run's partial sums: the swapped product writes every element.
        const std::unique_ptr<C[]> ct(new C[static_cast<size_t>(m * n)]);
        sw->c = ct.get();
        sw->ldc = m;
        GemmReport report = run(*sw, threads);
        report.swapped = true;
        add_transposed(ct.get(), m, n, c, ldc, options.accumulate, pb.bias, options.relu);
        rows_done_after(options.rows_done, m);
        return report;
    }
    return run(pb, threads);
}

}  // namespace

GemmReport gemm_s16s16f32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int16_t>& a,
                          const DfpMatrix<int16_t>& b, float* c, int64_t ldc,
                          const GemmOptions& options) {
    return gemm(m, n, k, a, b, c, ldc, options);
}
GemmReport gemm_s16s16s32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int16_t>& a,
                          const DfpMatrix<int16_t>& b, int32_t* c, int64_t ldc,
                          const GemmOptions& options) {
    return gemm(m, n, k, a, b, c, ldc, options);
}
GemmReport gemm_s8s8f32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int8_t>& a,
                        const DfpMatrix<int8_t>& b, float* c, int64_t ldc,
                        const GemmOptions& options) {
    return gemm(m, n, k, a, b, c, ldc, options);
}
GemmReport gemm_s8s8s32(int64_t m, int64_t n, int64_t k, const DfpMatrix<int8_t>& a,
                        const DfpMatrix<int8_t>& b, int32_t* c, int64_t ldc,
                        const GemmOptions& options) {
    return gemm(m, n, k, a, b, c, ldc, options);
}

// The registries. A new ISA is one folder, one line here and one CPUID check in base/isa.cpp.
const GemmContext<int16_t>* s16_context(Isa isa) {
    switch (isa) {
        case Isa::avx512_vnni:
            return &s16_context_avx512_vnni();
        case Isa::avx2:
            return &s16_context_avx2();
        case Isa::scalar:
            return s16_scalar_twin(4, 16);
        case Isa::avx512:
            return nullptr;  // no kernel of its own: the AVX2 one runs
    }
    return nullptr;
}

const GemmContext<int8_t>* s8_context(Isa isa) {
    switch (isa) {
        case Isa::avx512_vnni:
            return &s8_context_avx512_vnni();
        case Isa::scalar:
            return s8_scalar_twin(4, 16);
        case Isa::avx2:
        case Isa::avx512:
            return nullptr;  // vpmaddubsw saturates at INT16: no exact s8 kernel
    }
    return nullptr;
}

}  // namespace dfp::kernels
