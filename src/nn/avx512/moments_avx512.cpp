// AVX-512 sums of a batch-norm block's deviations from its first row (MomentBlocks::add): the
// portable loop's operations, lane for lane and row after row (a subtraction and two additions,
// no FMA), so the same bits, 16 channels a vector and four vectors a sweep. A convolution's GEMM
// hands the blocks over from its caches, where the portable loop's 4 lanes, not memory, set the
// pace.
#include <immintrin.h>

#include "nn/avx512/lanes.hpp"
#include "nn/norm.hpp"

namespace dfp::nn {

void block_deviation_sums_avx512(const float* x, std::int64_t rows, std::int64_t c, float* s1,
                                 float* s2) {
    constexpr std::int64_t kVectors = 4;
    for (std::int64_t ch0 = 0; ch0 < c; ch0 += kVectors * kLanes) {
        __mmask16 mask[kVectors];
        __m512 first[kVectors], sum[kVectors], squares[kVectors];
        for (int v = 0; v < kVectors; ++v) {
            const std::int64_t ch = ch0 + v * kLanes;
            mask[v] = ch < c ? lanes(c - ch) : __mmask16{0};
            first[v] = _mm512_maskz_loadu_ps(mask[v], x + ch);
            sum[v] = _mm512_setzero_ps();
            squares[v] = _mm512_setzero_ps();
        }
        for (std::int64_t i = 1; i < rows; ++i)
            for (int v = 0; v < kVectors; ++v) {
                const __m512 d = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(mask[v], x + i * c + ch0 + v * kLanes), first[v]);
                sum[v] = _mm512_add_ps(sum[v], d);
                // An explicitly rounded product: GCC fuses a plain one with the add into an FMA.
                const __m512 dd =
                    _mm512_mul_round_ps(d, d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                squares[v] = _mm512_add_ps(squares[v], dd);
            }
        for (int v = 0; v < kVectors; ++v) {
            _mm512_mask_storeu_ps(s1 + ch0 + v * kLanes, mask[v], sum[v]);
            _mm512_mask_storeu_ps(s2 + ch0 + v * kLanes, mask[v], squares[v]);
        }
    }
}

}  // namespace dfp::nn
