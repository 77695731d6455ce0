// AVX2 s16s16 micro-kernel: vpmaddwd (two INT16 products summed into an INT32 lane) + vpaddd.
// Tile 4 x 16: 8 ymm accumulators, 2 ymm of B, a broadcast of A and a product temporary: 12 of the
// 16 registers. vpmaddwd's pair sum is exact modulo 2^32 (only -32768 * -32768 twice wraps) and
// vpaddd wraps, so a chain that the overflow rule proves to fit is exact. There is no saturating
// INT32 add in AVX2, so count mode runs on the scalar reference instead. Packing uses the reference
// packers: on machines with only AVX2 the kernel, not the packing, is what matters.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/gemm_context.hpp"
#include "kernels/gemm_scalar.hpp"

namespace dfp::kernels {
namespace {

constexpr int kMr = 4, kNr = 16, kNrv = kNr / 8;

template <bool s32_out>
void ukernel_4x16(const UkernelArgs& args) {
    const int32_t* a = static_cast<const int32_t*>(args.a);
    const __m256i* b = static_cast<const __m256i*>(args.b);
    const int64_t kp = args.kp;
    const int64_t chain = s32_out ? kp : args.chain;
    alignas(32) float sum[kMr * kNr];
    __m256i acc[kMr][kNrv];
    for (int64_t p0 = 0; p0 < kp; p0 += chain) {
        const int64_t p1 = std::min(kp, p0 + chain);
        for (int i = 0; i < kMr; ++i)
            for (int v = 0; v < kNrv; ++v) acc[i][v] = _mm256_setzero_si256();
        for (int64_t p = p0; p < p1; ++p) {
            const __m256i b0 = _mm256_load_si256(b + p * kNrv);
            const __m256i b1 = _mm256_load_si256(b + p * kNrv + 1);
            for (int i = 0; i < kMr; ++i) {
                const __m256i ai = _mm256_set1_epi32(a[p * kMr + i]);
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(ai, b0));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(ai, b1));
            }
        }
        if constexpr (!s32_out)
            for (int i = 0; i < kMr; ++i)
                for (int v = 0; v < kNrv; ++v) {
                    float* s = sum + i * kNr + 8 * v;
                    const __m256 x = _mm256_cvtepi32_ps(acc[i][v]);
                    _mm256_store_ps(s, p0 == 0 ? x : _mm256_add_ps(_mm256_load_ps(s), x));
                }
    }
    for (int i = 0; i < kMr; ++i)
        for (int v = 0; v < kNrv; ++v) {
            if constexpr (s32_out) {
                auto* c = reinterpret_cast<__m256i*>(static_cast<int32_t*>(args.c) + i * args.ldc +
                                                     8 * v);
                _mm256_storeu_si256(c, args.load_c
                                           ? _mm256_add_epi32(_mm256_loadu_si256(c), acc[i][v])
                                           : acc[i][v]);
            } else {
                float* c = static_cast<float*>(args.c) + i * args.ldc + 8 * v;
                const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(args.row_scale[i]),
                                                   _mm256_loadu_ps(args.col_scale + 8 * v));
                const __m256 x = _mm256_mul_ps(_mm256_load_ps(sum + i * kNr + 8 * v), scale);
                __m256 y = args.load_c ? _mm256_add_ps(_mm256_loadu_ps(c), x) : x;
                if (args.bias) y = _mm256_add_ps(y, _mm256_loadu_ps(args.bias + 8 * v));
                // vmaxps returns its second operand when one is NaN, and on +-0: y.
                if (args.relu) y = _mm256_max_ps(_mm256_setzero_ps(), y);
                _mm256_storeu_ps(c, y);
            }
        }
}

}  // namespace

const GemmContext<int16_t>& s16_context_avx2() {
    static const GemmContext<int16_t> ctx{"avx2",
                                          Isa::avx2,
                                          kMr,
                                          kNr,
                                          2,
                                          /*mc=*/128,
                                          /*kc=*/256,
                                          /*nc=*/1024,
                                          s16_ref_packer(kMr),
                                          s16_ref_packer(kNr),
                                          ukernel_4x16<false>,
                                          nullptr,
                                          ukernel_4x16<true>};
    return ctx;
}

}  // namespace dfp::kernels
