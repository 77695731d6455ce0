// AVX-512 local response normalisation across channels for beta = 3/4 (AlexNet's and GoogLeNet's):
// scale^-3/4 = 1 / (sqrt(scale) sqrt(sqrt(scale))), four correctly rounded operations (two square
// roots, a product and a division) instead of a power. Each pixel's squares (and, backward, its
// ratios) go into a row padded with size / 2 zeros on either side, so every channel's window is
// `size` loads from it, the edges included. oneDNN 2.6's JIT LRN on NHWC took about 18 ms forward
// and 22 ms backward on GoogLeNet's norm2 at batch 32 (2 threads, Zen 4), several times what moving
// its tensors costs.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "nn/avx512/lanes.hpp"
#include "nn/norm.hpp"

namespace dfp::nn {
namespace {

// x^-3/4 for x > 0 (inf gives 0, NaN stays NaN).
__m512 pow_minus_three_quarters(__m512 x) {
    const __m512 root = _mm512_sqrt_ps(x);
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_mul_ps(root, _mm512_sqrt_ps(root)));
}

// One pixel's row of a padded buffer: pad[half + j] = v(j) for the c channels, zeros around.
class PaddedRow {
  public:
    PaddedRow(std::int64_t c, std::int64_t half)
        : c_(c), half_(half), buf_(static_cast<std::size_t>(c + 2 * half + kLanes), 0.0f) {}
    float* row() { return buf_.data() + half_; }
    // Sum of the `size` entries centred on channels [ch, ch + 16) (its window, clipped).
    __m512 window(std::int64_t ch) const {
        const float* p = buf_.data() + ch;
        __m512 sum = _mm512_loadu_ps(p);
        for (std::int64_t t = 1; t <= 2 * half_; ++t)
            sum = _mm512_add_ps(sum, _mm512_loadu_ps(p + t));
        return sum;
    }
    std::int64_t channels() const { return c_; }

  private:
    std::int64_t c_, half_;
    std::vector<float> buf_;
};

// scale = k + alpha / size * (window sum of x^2) for channels [ch, ch + 16) of the pixel whose
// squares `sq` holds.
__m512 scale_at(const PaddedRow& sq, std::int64_t ch, const LrnConfig& cfg) {
    return _mm512_add_ps(_mm512_set1_ps(cfg.k),
                         _mm512_mul_ps(_mm512_set1_ps(cfg.alpha / float(cfg.size)), sq.window(ch)));
}

void fill_squares(PaddedRow& sq, const float* x) {
    float* out = sq.row();
    for (std::int64_t ch = 0; ch < sq.channels(); ch += kLanes) {
        const __mmask16 k = lanes(sq.channels() - ch);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + ch);
        _mm512_mask_storeu_ps(out + ch, k, _mm512_mul_ps(v, v));
    }
}

}  // namespace

void lrn_forward_avx512(float* dst, const float* src, std::int64_t m, std::int64_t c,
                        const LrnConfig& config) {
#pragma omp parallel if (m * c >= kMinParallelElements)
    {
        PaddedRow sq(c, config.size / 2);
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < m; ++i) {
            const float* x = src + i * c;
            fill_squares(sq, x);
            for (std::int64_t ch = 0; ch < c; ch += kLanes) {
                const __mmask16 k = lanes(c - ch);
                const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + ch),
                                               pow_minus_three_quarters(scale_at(sq, ch, config)));
                _mm512_mask_storeu_ps(dst + i * c + ch, k, y);
            }
        }
    }
}

void lrn_backward_avx512(float* diff_src, bool accumulate, const float* diff_dst, const float* dst,
                         const float* src, std::int64_t m, std::int64_t c,
                         const LrnConfig& config) {
    // As lrn_backward: diff_src_c = dy_c scale_c^-beta - coeff src_c sum_j dy_j dst_j / scale_j
    // over the window of c.
    const float coeff = 2.0f * config.alpha * config.beta / float(config.size);
#pragma omp parallel if (m * c >= kMinParallelElements)
    {
        PaddedRow sq(c, config.size / 2), ratio(c, config.size / 2);
        std::vector<float> power(static_cast<std::size_t>(c + kLanes));
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < m; ++i) {
            const float* x = src + i * c;
            const float* dy = diff_dst + i * c;
            const float* y = dst + i * c;
            fill_squares(sq, x);
            for (std::int64_t ch = 0; ch < c; ch += kLanes) {
                const __mmask16 k = lanes(c - ch);
                const __m512 scale = scale_at(sq, ch, config);
                const __m512 g = _mm512_maskz_loadu_ps(k, dy + ch);
                _mm512_storeu_ps(power.data() + ch, pow_minus_three_quarters(scale));
                _mm512_mask_storeu_ps(
                    ratio.row() + ch, k,
                    _mm512_div_ps(_mm512_mul_ps(g, _mm512_maskz_loadu_ps(k, y + ch)), scale));
            }
            for (std::int64_t ch = 0; ch < c; ch += kLanes) {
                const __mmask16 k = lanes(c - ch);
                const __m512 g = _mm512_maskz_loadu_ps(k, dy + ch);
                const __m512 term = _mm512_mul_ps(
                    _mm512_mul_ps(_mm512_set1_ps(coeff), _mm512_maskz_loadu_ps(k, x + ch)),
                    ratio.window(ch));
                __m512 out =
                    _mm512_sub_ps(_mm512_mul_ps(g, _mm512_loadu_ps(power.data() + ch)), term);
                float* to = diff_src + i * c + ch;
                if (accumulate) out = _mm512_add_ps(_mm512_maskz_loadu_ps(k, to), out);
                _mm512_mask_storeu_ps(to, k, out);
            }
        }
    }
}

}  // namespace dfp::nn
