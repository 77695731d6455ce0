// AVX512-VNNI micro-kernels and packers: s16s16 on vpdpwssd (vpdpwssds in count mode), s8s8 on
// vpdpbusd. Tile 8 x 32: 16 zmm INT32 accumulators (8 rows x 2 vectors of 16 columns), 2 zmm of B
// and one broadcast of A per K-pair: 18 of the 32 registers, so nothing spills in the hot loop, and
// 10 loads per 16 multiply-add instructions. The FP32 sums of finished chains live in a 2 KiB
// stack tile (no registers are left for them); a chain of >= 32 pairs makes that traffic small.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/gemm_context.hpp"
#include "kernels/gemm_scalar.hpp"

namespace dfp::kernels {
namespace {

constexpr int kMr = 8, kNr = 32, kNrv = kNr / 16;  // zmm vectors per row of the tile

enum class Mode { f32, f32_count, s32 };

// ---- micro-kernels ----

// One chain of n >= 1 K-groups, written in assembly: GCC 12, given the same loop in intrinsics,
// moves the accumulators between registers and the stack inside the hot loop. zmm0..15 are the
// accumulators (row i, vector v in zmm(2i + v), which is also the 64-byte slot of the 8 x 32 tile
// `t`), zmm30/31 the two B vectors, zmm29 the broadcast of A. Per K-group: 2 aligned loads of B,
// 8 broadcasts, 16 dot instructions. AT&T order "B, A, acc": for vpdpbusd the middle operand is the
// unsigned one. After the loop the epilogue (one of the macros below) leaves the chain in `t`.
#define DFP_ROW(insn, i, r0, r1)                  \
    "vpbroadcastd " #i "*4(%[a]), %%zmm29\n\t"    \
    insn " %%zmm30, %%zmm29, %%zmm" #r0 "\n\t"    \
    insn " %%zmm31, %%zmm29, %%zmm" #r1 "\n\t"
#define DFP_ALL16(m) m(0) m(1) m(2) m(3) m(4) m(5) m(6) m(7) m(8) m(9) m(10) m(11) m(12) m(13) m(14) m(15)
#define DFP_ZERO(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
#define DFP_STORE_I32(r) "vmovdqa32 %%zmm" #r ", " #r "*64(%[t])\n\t"
#define DFP_CVT_STORE(r) "vcvtdq2ps %%zmm" #r ", %%zmm" #r "\n\tvmovaps %%zmm" #r ", " #r "*64(%[t])\n\t"
#define DFP_CVT_ADD(r)                                        \
    "vcvtdq2ps %%zmm" #r ", %%zmm" #r "\n\t"                  \
    "vaddps " #r "*64(%[t]), %%zmm" #r ", %%zmm" #r "\n\t"    \
    "vmovaps %%zmm" #r ", " #r "*64(%[t])\n\t"
// s8: subtract 128 * column sums (comp: 2 vectors, already multiplied) from every accumulator.
#define DFP_COMP(r) "vpsubd (" #r "%%2)*64(%[comp]), %%zmm" #r ", %%zmm" #r "\n\t"
#define DFP_CHAIN(insn, epilogue)                                                              \
    asm volatile(DFP_ALL16(DFP_ZERO)                                                           \
                 "1:\n\t"                                                                      \
                 "vmovdqa64 (%[b]), %%zmm30\n\t"                                               \
                 "vmovdqa64 64(%[b]), %%zmm31\n\t"                                             \
                 DFP_ROW(insn, 0, 0, 1) DFP_ROW(insn, 1, 2, 3) DFP_ROW(insn, 2, 4, 5)          \
                 DFP_ROW(insn, 3, 6, 7) DFP_ROW(insn, 4, 8, 9) DFP_ROW(insn, 5, 10, 11)        \
                 DFP_ROW(insn, 6, 12, 13) DFP_ROW(insn, 7, 14, 15)                             \
                 "add $32, %[a]\n\t"                                                           \
                 "sub $-128, %[b]\n\t"                                                         \
                 "dec %[n]\n\t"                                                                \
                 "jnz 1b\n\t" epilogue                                                         \
                 : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n)                                       \
                 : [t] "r"(t), [comp] "r"(comp)                                                \
                 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",     \
                   "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm29",      \
                   "xmm30", "xmm31", "cc", "memory")

// What the chain leaves in the tile t (8 x 32, 64-byte aligned).
enum class Epilogue {
    i32,        // the INT32 sums (s32 output, count mode)
    f32_first,  // the sums converted to FP32
    f32_add,    // the sums converted to FP32 and added to t
};

template <bool s8, bool saturate, Epilogue ep>
__attribute__((always_inline)) inline void chain_8x32(const int32_t* a, const __m512i* b, int64_t n,
                                                      void* t, const __m512i* comp) {
    if constexpr (s8) {
        static_assert(ep != Epilogue::f32_add, "s8 blocks are one chain");
        if constexpr (ep == Epilogue::i32) DFP_CHAIN("vpdpbusd", DFP_ALL16(DFP_COMP) DFP_ALL16(DFP_STORE_I32));
        else DFP_CHAIN("vpdpbusd", DFP_ALL16(DFP_COMP) DFP_ALL16(DFP_CVT_STORE));
    } else if constexpr (saturate) {
        static_assert(ep == Epilogue::i32, "count mode inspects the INT32 sums");
        DFP_CHAIN("vpdpwssds", DFP_ALL16(DFP_STORE_I32));
    } else if constexpr (ep == Epilogue::i32) {
        DFP_CHAIN("vpdpwssd", DFP_ALL16(DFP_STORE_I32));
    } else if constexpr (ep == Epilogue::f32_first) {
        DFP_CHAIN("vpdpwssd", DFP_ALL16(DFP_CVT_STORE));
    } else {
        DFP_CHAIN("vpdpwssd", DFP_ALL16(DFP_CVT_ADD));
    }
}
#undef DFP_CHAIN
#undef DFP_COMP
#undef DFP_CVT_ADD
#undef DFP_CVT_STORE
#undef DFP_STORE_I32
#undef DFP_ZERO
#undef DFP_ALL16
#undef DFP_ROW

// s8: KG = 4 bytes per lane, s16: KG = 2 int16 per lane; either way one 32-bit word per row of A
// and 32 words (2 zmm) per K-group of B. FP32 output accumulates the chains in the tile `sum`;
// count mode and INT32 output go through the INT32 tile `acc`.
template <bool s8, Mode mode>
void ukernel_8x32(const UkernelArgs& args) {
    const int32_t* a = static_cast<const int32_t*>(args.a);
    const __m512i* b = static_cast<const __m512i*>(args.b);
    const int64_t kp = args.kp;
    // s8 and INT32 output: one chain per block (s8 cannot overflow in a block, see gemm.hpp; INT32
    // output wraps harmlessly).
    const int64_t chain = mode == Mode::s32 || s8 ? kp : args.chain;
    // The C tile is read once per block, at the end: start fetching it now (it is often in L3).
    for (int i = 0; i < kMr; ++i) {
        const char* c = static_cast<const char*>(args.c) + i * args.ldc * 4;
        _mm_prefetch(c, _MM_HINT_T0);
        _mm_prefetch(c + 64, _MM_HINT_T0);
    }
    alignas(64) float sum[kMr * kNr];
    alignas(64) int32_t acc[kMr * kNr];
    alignas(64) __m512i comp[kNrv];
    if constexpr (s8)
        for (int v = 0; v < kNrv; ++v)
            comp[v] = _mm512_slli_epi32(_mm512_loadu_si512(args.b_col_sums + 16 * v), 7);
    int64_t events = 0;
    for (int64_t p0 = 0; p0 < kp; p0 += chain) {
        const int64_t n = std::min(kp, p0 + chain) - p0;
        const int32_t* ap = a + p0 * kMr;
        const __m512i* bp = b + p0 * kNrv;
        if constexpr (mode == Mode::f32) {
            if (s8 || p0 == 0) chain_8x32<s8, false, Epilogue::f32_first>(ap, bp, n, sum, comp);
            else if constexpr (!s8) chain_8x32<false, false, Epilogue::f32_add>(ap, bp, n, sum, comp);
        } else {
            chain_8x32<s8, mode == Mode::f32_count, Epilogue::i32>(ap, bp, n, acc, comp);
        }
        if constexpr (mode == Mode::f32_count) {
            const __m512i hi = _mm512_set1_epi32(INT32_MAX), lo = _mm512_set1_epi32(INT32_MIN);
            for (int e = 0; e < kMr * kNr; e += 16) {
                const __m512i x = _mm512_load_si512(acc + e);
                events += __builtin_popcount(_mm512_cmpeq_epi32_mask(x, hi) | _mm512_cmpeq_epi32_mask(x, lo));
                const __m512 f = _mm512_cvtepi32_ps(x);
                _mm512_store_ps(sum + e, p0 == 0 ? f : _mm512_add_ps(_mm512_load_ps(sum + e), f));
            }
        }
    }
    if constexpr (mode == Mode::f32_count) *args.events += events;
    if constexpr (mode == Mode::s32) {
        for (int i = 0; i < kMr; ++i)
            for (int v = 0; v < kNrv; ++v) {
                int32_t* c = static_cast<int32_t*>(args.c) + i * args.ldc + 16 * v;
                const __m512i x = _mm512_load_si512(acc + i * kNr + 16 * v);
                _mm512_storeu_si512(c, args.load_c ? _mm512_add_epi32(_mm512_loadu_si512(c), x) : x);
            }
    } else {
        for (int i = 0; i < kMr; ++i) {
            const __m512 rs = _mm512_set1_ps(args.row_scale[i]);
            for (int v = 0; v < kNrv; ++v) {
                float* c = static_cast<float*>(args.c) + i * args.ldc + 16 * v;
                const __m512 scale = _mm512_mul_ps(rs, _mm512_loadu_ps(args.col_scale + 16 * v));
                const __m512 x = _mm512_mul_ps(_mm512_load_ps(sum + i * kNr + 16 * v), scale);
                _mm512_storeu_ps(c, args.load_c ? _mm512_add_ps(_mm512_loadu_ps(c), x) : x);
            }
        }
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

// Packers prefetch this many int16 (two cache lines) ahead along each source row they read.
constexpr int64_t kPrefetchAhead = 64;

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

// The overflow statistics of one packed micro-panel (same numbers as ref_norm_levels), streaming:
// per 8 lanes, a binary counter of block sums, so each pair costs about two adds and two maxima.
template <int W>
void norm_levels_avx512(const int16_t* panel, int64_t kp, uint64_t* levels) {
    const int nl = norm_levels(kp);
    constexpr int kMaxLevels = 24;
    __m512i best[kMaxLevels];
    for (int l = 0; l < nl; ++l) best[l] = _mm512_setzero_si512();
    for (int h = 0; h < W / 8; ++h) {
        __m512i part[kMaxLevels];
        for (int l = 0; l < nl; ++l) part[l] = _mm512_setzero_si512();
        for (int64_t p = 0; p < kp; ++p) {
            const __m256i x =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + (p * W + h * 8) * 2));
            // x0^2 + x1^2 <= 2^31 fits in uint32 even for -32768: widen as unsigned.
            const __m512i s = _mm512_cvtepu32_epi64(_mm256_madd_epi16(x, x));
            best[0] = _mm512_max_epu64(best[0], s);
            if (nl == 1) continue;
            part[1] = _mm512_add_epi64(part[1], s);
            for (int l = 1; l < nl - 1 && ((p + 1) & ((int64_t{1} << l) - 1)) == 0; ++l) {
                best[l] = _mm512_max_epu64(best[l], part[l]);
                part[l + 1] = _mm512_add_epi64(part[l + 1], part[l]);
                part[l] = _mm512_setzero_si512();
            }
        }
        // The last (possibly partial) block of each level holds the partial sums below it.
        __m512i carry = _mm512_setzero_si512();
        for (int l = 1; l < nl; ++l) {
            carry = _mm512_add_epi64(carry, part[l]);
            best[l] = _mm512_max_epu64(best[l], carry);
        }
    }
    for (int l = 0; l < nl; ++l) levels[l] = _mm512_reduce_max_epu64(best[l]);
}

// X(r, k) = src[r * ld + k]: rows hold K contiguously, so a K-pair is one 32-bit word and packing
// is a 32-bit transpose of W rows x kp words (16 x 16 at a time).
template <int W>
void pack_s16_k_contiguous(const int16_t* src, int64_t ld, int64_t rows, int64_t kc, int shift,
                           int16_t* d) {
    const int64_t kp = ceil_div(kc, 2);
    static_assert(W == 8 || W == 32);
    // W = 32: 16 rows x 16 pairs per transpose. W = 8: 8 rows x 32 pairs (two chunks of 16 pairs
    // fill the 16 input vectors; each output splits into its two 256-bit halves).
    constexpr int kRowsPer = W == 32 ? 16 : 8;
    constexpr int kPairsPer = W == 32 ? 16 : 32;
    for (int64_t g = 0; g < W; g += kRowsPer)
        for (int64_t c0 = 0; c0 < kp; c0 += kPairsPer) {
            __m512i r[16];
            for (int s = 0; s < 16; ++s) {
                const int64_t row = g + s % kRowsPer, k0 = 2 * (c0 + 16 * (s / kRowsPer));
                _mm_prefetch(reinterpret_cast<const char*>(src + row * ld + k0 + kPrefetchAhead), _MM_HINT_T0);
                r[s] = row < rows ? round_shift(_mm512_maskz_loadu_epi16(first_n(kc - k0),
                                                                         src + row * ld + k0),
                                                shift)
                                  : _mm512_setzero_si512();
            }
            transpose16x16(r);
            for (int t = 0; t < 16; ++t) {
                if constexpr (W == 32) {
                    if (c0 + t < kp) _mm512_store_si512(d + ((c0 + t) * W + g) * 2, r[t]);
                } else {
                    if (c0 + t < kp)
                        _mm256_store_si256(reinterpret_cast<__m256i*>(d + (c0 + t) * W * 2),
                                           _mm512_castsi512_si256(r[t]));
                    if (c0 + 16 + t < kp)
                        _mm256_store_si256(reinterpret_cast<__m256i*>(d + (c0 + 16 + t) * W * 2),
                                           _mm512_extracti64x4_epi64(r[t], 1));
                }
            }
        }
}

// X(r, k) = src[k * ld + r]: a K row holds the panel's rows contiguously; a pair interleaves two
// K rows (vpunpck{l,h}wd), then the 128-bit lanes are put back in row order.
template <int W>
void pack_s16_r_contiguous(const int16_t* src, int64_t ld, int64_t rows, int64_t kc, int shift,
                           int16_t* d) {
    const int64_t kp = ceil_div(kc, 2);
    static_assert(W == 8 || W == 32);
    for (int64_t p = 0; p < kp; ++p) {
        const int16_t* k0 = src + 2 * p * ld;
        const bool odd_tail = 2 * p + 1 >= kc;  // odd kc: the pair's second value is a zero
        // The two K rows are far apart (ld), so the hardware prefetcher does not follow; fetch
        // the lines that the micro-panels after this one will read from the same rows.
        _mm_prefetch(reinterpret_cast<const char*>(k0 + kPrefetchAhead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(k0 + ld + kPrefetchAhead), _MM_HINT_T0);
        if constexpr (W == 32) {
            const __mmask32 m = first_n(rows);
            const __m512i x0 = round_shift(_mm512_maskz_loadu_epi16(m, k0), shift);
            const __m512i x1 = odd_tail ? _mm512_setzero_si512()
                                        : round_shift(_mm512_maskz_loadu_epi16(m, k0 + ld), shift);
            const __m512i lo = _mm512_unpacklo_epi16(x0, x1), hi = _mm512_unpackhi_epi16(x0, x1);
            const __m512i first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
            const __m512i second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
            _mm512_store_si512(d + p * W * 2, _mm512_permutex2var_epi64(lo, first, hi));
            _mm512_store_si512(d + p * W * 2 + 32, _mm512_permutex2var_epi64(lo, second, hi));
        } else {
            const __mmask8 m = static_cast<__mmask8>(first_n(rows));
            const __m128i x0 = round_shift(_mm_maskz_loadu_epi16(m, k0), shift);
            const __m128i x1 = odd_tail ? _mm_setzero_si128()
                                        : round_shift(_mm_maskz_loadu_epi16(m, k0 + ld), shift);
            _mm_store_si128(reinterpret_cast<__m128i*>(d + p * W * 2), _mm_unpacklo_epi16(x0, x1));
            _mm_store_si128(reinterpret_cast<__m128i*>(d + p * W * 2 + 8),
                            _mm_unpackhi_epi16(x0, x1));
        }
    }
}

template <int W>
void pack_s16(const int16_t* src, int64_t ld, bool k_contiguous, int64_t rows, int64_t kc,
              int shift, int16_t* dst, uint64_t* stats, int32_t*) {
    const int64_t kp = ceil_div(kc, 2);
    const int nl = norm_levels(kp);
    for (int64_t q = 0; q * W < rows; ++q) {
        int16_t* d = dst + q * kp * W * 2;
        const int64_t rq = std::min<int64_t>(W, rows - q * W);
        if (k_contiguous)
            pack_s16_k_contiguous<W>(src + q * W * ld, ld, rq, kc, shift, d);
        else
            pack_s16_r_contiguous<W>(src + q * W, ld, rq, kc, shift, d);
        if (stats != nullptr) norm_levels_avx512<W>(d, kp, stats + q * nl);  // panel still in L1
    }
}

constexpr GemmContext<int16_t> kS16{
    "avx512_vnni",
    Isa::avx512_vnni,
    kMr,
    kNr,
    2,
    /*mc=*/256,
    /*kc=*/256,
    /*nc=*/2048,
    pack_s16<kMr>,
    pack_s16<kNr>,
    ukernel_8x32<false, Mode::f32>,
    ukernel_8x32<false, Mode::f32_count>,
    ukernel_8x32<false, Mode::s32>,
};

}  // namespace

const GemmContext<int16_t>& s16_context_avx512_vnni() {
    return kS16;
}

const GemmContext<int8_t>& s8_context_avx512_vnni() {
    // The s8 packers are the reference ones at this tile shape (offset A, column sums of B).
    static const GemmContext<int8_t> ctx = [] {
        const GemmContext<int8_t>& twin = *s8_scalar_twin(kMr, kNr);
        return GemmContext<int8_t>{"avx512_vnni",
                                   Isa::avx512_vnni,
                                   kMr,
                                   kNr,
                                   4,
                                   /*mc=*/256,
                                   /*kc=*/512,
                                   /*nc=*/2048,
                                   twin.pack_a,
                                   twin.pack_b,
                                   ukernel_8x32<true, Mode::f32>,
                                   nullptr,
                                   ukernel_8x32<true, Mode::s32>};
    }();
    return ctx;
}

}  // namespace dfp::kernels
