#include "nn/norm.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>

#include "base/aligned.hpp"
#include "base/error.hpp"
#include "base/isa.hpp"
#include "nn/dfp_gemm.hpp"
#include "nn/onednn.hpp"

namespace dfp::nn {

void batchnorm_forward_train(float* dst, float* mean, float* rstd, const float* src,
                             const float* gamma, const float* beta, std::int64_t m, std::int64_t c,
                             float eps, bool relu) {
    // Two passes in double (mean, then squared deviations): no cancellation when |mean| >> std.
    std::vector<double> sum(std::size_t(c), 0.0), sq(std::size_t(c), 0.0);
    double* s = sum.data();
    double* q = sq.data();
#pragma omp parallel for reduction(+ : s[:c]) schedule(static) if (m * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t ch = 0; ch < c; ++ch) s[ch] += src[i * c + ch];
    for (std::int64_t ch = 0; ch < c; ++ch) mean[ch] = float(s[ch] / double(m));
#pragma omp parallel for reduction(+ : q[:c]) schedule(static) if (m * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const double d = double(src[i * c + ch]) - mean[ch];
            q[ch] += d * d;
        }
    for (std::int64_t ch = 0; ch < c; ++ch)
        rstd[ch] = float(1.0 / std::sqrt(q[ch] / double(m) + eps));
    batchnorm_forward_stats(dst, src, mean, rstd, gamma, beta, m, c, relu);
}

namespace {

// run(kRelu, kResidual) with the two flags as std::bool_constant types, for loops compiled once
// per combination.
template <class Run>
void with_relu_residual(bool relu, bool residual, Run run) {
    using T = std::true_type;
    using F = std::false_type;
    if (residual)
        relu ? run(T{}, T{}) : run(F{}, T{});
    else
        relu ? run(T{}, F{}) : run(F{}, F{});
}

// The loops below are templates on the fused ReLU so that each compiles to one branch-free,
// vectorised body: the mask is a select on values loaded unconditionally.
template <bool kRelu, bool kResidual>
void forward_stats(float* dst, const float* src, const float* mean, const float* rstd,
                   const float* gamma, const float* beta, std::int64_t m, std::int64_t c,
                   const float* residual) {
#pragma omp parallel for schedule(static) if (m * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < m; ++i)
#pragma omp simd
        for (std::int64_t ch = 0; ch < c; ++ch) {
            float y = gamma[ch] * (src[i * c + ch] - mean[ch]) * rstd[ch] + beta[ch];
            if constexpr (kResidual) y += residual[i * c + ch];
            dst[i * c + ch] = kRelu && y < 0.0f ? 0.0f : y;  // NaN passes, as relu_forward
        }
}

// diff_dst where the fused ReLU let the value through (relu_backward's mask), else 0.
template <bool kRelu>
inline float masked(const float* diff_dst, const float* relu_dst, std::int64_t e) {
    const float dy = diff_dst[e];
    if constexpr (kRelu) return relu_dst[e] > 0.0f ? dy : 0.0f;
    return dy;
}

// sum (synchronised batch norm) turns the sums into those of all processes, whose rows number
// global_rows, before the means.
template <bool kRelu>
void backward(float* diff_src, float* diff_gamma, float* diff_beta, const float* diff_dst,
              const float* src, const float* mean, const float* rstd, const float* gamma,
              std::int64_t m, std::int64_t c, bool batch_stats, const float* relu_dst,
              const BatchNorm2d::SumAcrossProcesses& sum = {}, double global_rows = 0) {
    // With xhat = (src - mean) rstd: dbeta = sum dy, dgamma = sum dy xhat, and for batch
    // statistics dx = gamma rstd (dy - dbeta / M - xhat dgamma / M); for constant ones
    // dx = gamma rstd dy.
    std::vector<double> sum_dy(std::size_t(c), 0.0), sum_dy_xhat(std::size_t(c), 0.0);
    double* sd = sum_dy.data();
    double* sdx = sum_dy_xhat.data();
#pragma omp parallel for reduction(+ : sd[:c], sdx[:c]) schedule(static) \
    if (m * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const double dy = masked<kRelu>(diff_dst, relu_dst, i * c + ch);
            sd[ch] += dy;
            sdx[ch] += dy * (double(src[i * c + ch]) - mean[ch]) * rstd[ch];
        }
    for (std::int64_t ch = 0; ch < c; ++ch) {
        diff_beta[ch] += float(sd[ch]);
        diff_gamma[ch] += float(sdx[ch]);
    }
    double rows = double(m);
    if (sum) {
        // Every process takes part, with or without diff_src.
        std::vector<double> sums(sum_dy);
        sums.insert(sums.end(), sum_dy_xhat.begin(), sum_dy_xhat.end());
        sum(sums, true);
        std::copy_n(sums.begin(), c, sum_dy.begin());
        std::copy_n(sums.begin() + c, c, sum_dy_xhat.begin());
        rows = global_rows;
    }
    if (!diff_src) return;
    std::vector<float> mean_dy(std::size_t(c), 0.0f), mean_dy_xhat(std::size_t(c), 0.0f);
    if (batch_stats)
        for (std::int64_t ch = 0; ch < c; ++ch) {
            mean_dy[std::size_t(ch)] = float(sd[ch] / rows);
            mean_dy_xhat[std::size_t(ch)] = float(sdx[ch] / rows);
        }
    const float* mdy = mean_dy.data();
    const float* mdx = mean_dy_xhat.data();
#pragma omp parallel for schedule(static) if (m * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < m; ++i)
#pragma omp simd
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const float xhat = (src[i * c + ch] - mean[ch]) * rstd[ch];
            diff_src[i * c + ch] +=
                gamma[ch] * rstd[ch] *
                (masked<kRelu>(diff_dst, relu_dst, i * c + ch) - mdy[ch] - xhat * mdx[ch]);
        }
}

}  // namespace

void batchnorm_forward_stats(float* dst, const float* src, const float* mean, const float* rstd,
                             const float* gamma, const float* beta, std::int64_t m, std::int64_t c,
                             bool relu, const float* residual) {
    const auto run = [&](auto kRelu, auto kResidual) {
        forward_stats<decltype(kRelu)::value, decltype(kResidual)::value>(
            dst, src, mean, rstd, gamma, beta, m, c, residual);
    };
    with_relu_residual(relu, residual != nullptr, run);
}

void batchnorm_backward(float* diff_src, float* diff_gamma, float* diff_beta, const float* diff_dst,
                        const float* src, const float* mean, const float* rstd, const float* gamma,
                        std::int64_t m, std::int64_t c, bool batch_stats, const float* relu_dst) {
    if (relu_dst)
        backward<true>(diff_src, diff_gamma, diff_beta, diff_dst, src, mean, rstd, gamma, m, c,
                       batch_stats, relu_dst);
    else
        backward<false>(diff_src, diff_gamma, diff_beta, diff_dst, src, mean, rstd, gamma, m, c,
                        batch_stats, nullptr);
}

// ---- Train mode: the memory-bound passes at the minimum of memory traffic ----
// Forward reads src twice (statistics, normalisation) and writes dst once; backward reads src and
// diff_dst twice (sums, gradient) and writes diff_src once, or only its DFP16 copy for a producer
// that reads nothing else. The rows are cut into blocks that stay in L1/L2 and are summed in
// float, the blocks in double; the variance comes from sums of deviations from a shift near the
// mean (each thread's first block's mean), and the threads' parts are merged with Chan et al.'s
// pairwise update, so it has about the precision of the two-pass double reference without its
// second read from memory. The fused ReLU's mask is recomputed from src in backward with the
// forward's own expression (no workspace, no read of dst).
namespace {

// Rows per cache block for c channels: about 32 KiB of src.
std::int64_t block_rows(std::int64_t c) {
    return std::clamp<std::int64_t>(8192 / c, 16, 256);
}

// Splits the blocks of m rows over the threads of a parallel region: this thread's rows [r0, r1).
std::pair<std::int64_t, std::int64_t> thread_rows(std::int64_t m, std::int64_t block) {
    const std::int64_t blocks = (m + block - 1) / block;
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
    return {std::min(m, b0 * block), std::min(m, b1 * block)};
}

// c floats rounded up to whole cache lines.
std::size_t round_up_lines(std::int64_t c) {
    constexpr std::int64_t kLine = kCacheLine / sizeof(float);
    return std::size_t((c + kLine - 1) / kLine * kLine);
}

int pass_threads(std::int64_t m, std::int64_t c) {
    return m * c >= kMinParallelElements ? omp_get_max_threads() : 1;
}

// A pass writing `out` (M, C) row by row on `threads` threads: row(i, dst) writes row i at dst.
// With `parts`, the rows go in blocks of 128 KiB of FP32, each handed to the quantizer right after
// it is written, from L2: at res2's shape that is 8-15% faster than quantizing in a pass of its
// own (BM_BatchNormReluQuantize); blocks of 32 KiB were slower than the two passes. With `parts`
// and no `out`, each block is written into a buffer of the thread's and only quantized.
template <class Row>
void write_rows(float* out, std::int64_t m, std::int64_t c, int threads,
                PartwiseQuantizer<std::int16_t>* parts, Row row) {
    const std::int64_t block = parts != nullptr ? 4 * block_rows(c) : 1;
#pragma omp parallel num_threads(threads)
    {
        UninitAlignedVector<float> buffer(out == nullptr ? std::size_t(block * c) : 0);
#pragma omp for schedule(static)
        for (std::int64_t i0 = 0; i0 < m; i0 += block) {
            const std::int64_t i1 = std::min(m, i0 + block);
            float* rows = out != nullptr ? out + i0 * c : buffer.data();
            for (std::int64_t i = i0; i < i1; ++i) row(i, rows + (i - i0) * c);
            if (parts != nullptr)
                parts->part(rows, std::size_t(i0 * c), std::size_t((i1 - i0) * c));
        }
    }
}

// Per channel, over rows [r0, r1) of src (M, C): sum_w += sum of w(e, ch) and sum_wx += sum of
// w(e, ch) (src[e] - center[ch]), e the element's index. In float within a block of rows (held in
// one cache-aligned buffer: as two std::vectors the loop ran at half the speed,
// BM_BatchNormReluForward), in double across blocks.
template <class Weight>
void blocked_sums(const float* src, const float* center, std::int64_t c, std::int64_t r0,
                  std::int64_t r1, Weight w, double* sum_w, double* sum_wx) {
    const std::int64_t block = block_rows(c);
    AlignedVector<float> buf(2 * round_up_lines(c));
    float* a = buf.data();
    float* b = a + round_up_lines(c);
    for (std::int64_t i0 = r0; i0 < r1; i0 += block) {
        const std::int64_t i1 = std::min(r1, i0 + block);
        std::fill_n(a, c, 0.0f);
        std::fill_n(b, c, 0.0f);
        for (std::int64_t i = i0; i < i1; ++i)
#pragma omp simd
            for (std::int64_t ch = 0; ch < c; ++ch) {
                const std::int64_t e = i * c + ch;
                const float g = w(e, ch);
                a[ch] += g;
                b[ch] += g * (src[e] - center[ch]);
            }
        for (std::int64_t ch = 0; ch < c; ++ch) sum_w[ch] += a[ch], sum_wx[ch] += b[ch];
    }
}

// y = (x - mean) scale + beta, and max(0, y) with the ReLU (NaN passes): the forward's expression,
// which backward repeats to recover the ReLU's mask bit for bit. The subtraction comes first:
// x scale + (beta - mean scale) loses the low bits of y when |mean| >> std.
inline float normalised(float x, float mean, float scale, float beta) {
    return (x - mean) * scale + beta;
}

}  // namespace

void MomentBlocks::begin(std::int64_t m, std::int64_t c) {
    m_ = m;
    c_ = c;
    const auto size = std::size_t((m + kernels::kRowsDoneRows - 1) / kernels::kRowsDoneRows * c);
    means_.resize(size);
    m2s_.resize(size);
    produced_ = false;
}

void block_deviation_sums(const float* x, std::int64_t rows, std::int64_t c, float* s1,
                          float* s2) {
    std::fill_n(s1, c, 0.0f);
    std::fill_n(s2, c, 0.0f);
    for (std::int64_t i = 1; i < rows; ++i)
#pragma omp simd
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const float d = x[i * c + ch] - x[ch];
            s1[ch] += d;
            s2[ch] += d * d;
        }
}

void MomentBlocks::add(const float* x, std::int64_t row0, std::int64_t rows) {
    const std::int64_t c = c_;
    // Per thread, kept: a GEMM hands its blocks over one at a time (784 per res2 layer).
    static thread_local AlignedVector<float> buf;
    buf.resize(2 * round_up_lines(c));
    float* s1 = buf.data();
    float* s2 = s1 + round_up_lines(c);
    // Deviations from the block's first row, a value within a few standard deviations of the mean:
    // no cancellation when |mean| >> std, in one sweep.
    static const bool avx512 = active_isa() >= Isa::avx512;
    (avx512 ? block_deviation_sums_avx512 : block_deviation_sums)(x, rows, c, s1, s2);
    double* mean = &means_[std::size_t(row0 / kernels::kRowsDoneRows * c)];
    double* m2 = &m2s_[std::size_t(row0 / kernels::kRowsDoneRows * c)];
    const double n = double(rows);
    for (std::int64_t ch = 0; ch < c; ++ch) {
        const double d = double(s1[ch]) / n;
        mean[ch] = double(x[ch]) + d;
        m2[ch] = std::max(0.0, double(s2[ch]) - double(s1[ch]) * d);
    }
}

void MomentBlocks::compute(const float* x, std::int64_t m, std::int64_t c) {
    begin(m, c);
    const std::int64_t blocks = (m + kernels::kRowsDoneRows - 1) / kernels::kRowsDoneRows;
#pragma omp parallel for schedule(static) if (m * c >= kMinParallelElements)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t row0 = b * kernels::kRowsDoneRows;
        add(x + row0 * c, row0, std::min(kernels::kRowsDoneRows, m - row0));
    }
}

void MomentBlocks::merge(float* mean, float* variance) const {
    const std::int64_t c = c_, blocks = (m_ + kernels::kRowsDoneRows - 1) / kernels::kRowsDoneRows;
    std::vector<double> mu(means_.begin(), means_.begin() + c), m2(m2s_.begin(), m2s_.begin() + c);
    double n = double(std::min(kernels::kRowsDoneRows, m_));
    for (std::int64_t b = 1; b < blocks; ++b) {
        const double nb = double(std::min(kernels::kRowsDoneRows, m_ - b * kernels::kRowsDoneRows));
        const double total = n + nb, wa = nb / total, wb = n * nb / total;
        const double* mean_b = &means_[std::size_t(b * c)];
        const double* m2_b = &m2s_[std::size_t(b * c)];
#pragma omp simd
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const double delta = mean_b[ch] - mu[ch];
            mu[ch] += delta * wa;
            m2[ch] += m2_b[ch] + delta * delta * wb;
        }
        n = total;
    }
    for (std::int64_t ch = 0; ch < c; ++ch) {
        mean[ch] = float(mu[ch]);
        variance[ch] = float(m2[ch] / double(m_));
    }
}

void MomentBlocks::end(const float* src, std::uint64_t iteration) {
    source_ = src;
    iteration_ = iteration;
    produced_ = true;
}

bool MomentBlocks::take(const float* src, std::int64_t m, std::int64_t c, std::uint64_t iteration) {
    const bool ok = produced_ && source_ == src && iteration_ == iteration && m_ == m && c_ == c;
    produced_ = false;
    return ok;
}

void batchnorm_train_moments(const float* src, std::int64_t m, std::int64_t c, float* mean,
                             float* variance) {
    MomentBlocks blocks;
    blocks.compute(src, m, c);
    blocks.merge(mean, variance);
}

void batchnorm_train_normalise(float* dst, const float* src, const float* mean, const float* scale,
                               const float* beta, std::int64_t m, std::int64_t c, bool relu,
                               const float* residual, PartwiseQuantizer<std::int16_t>* parts) {
    const auto run = [&](auto kRelu, auto kResidual) {
        write_rows(dst, m, c, pass_threads(m, c), parts, [&](std::int64_t i, float* out) {
#pragma omp simd
            for (std::int64_t ch = 0; ch < c; ++ch) {
                float y = normalised(src[i * c + ch], mean[ch], scale[ch], beta[ch]);
                if constexpr (decltype(kResidual)::value) y += residual[i * c + ch];
                out[ch] = decltype(kRelu)::value && y < 0.0f ? 0.0f : y;
            }
        });
    };
    with_relu_residual(relu, residual != nullptr, run);
}

bool batchnorm_train_backward(float* diff_src, bool accumulate_src, float* diff_gamma,
                              float* diff_beta, const float* diff_dst, const float* src,
                              const float* mean, const float* rstd, const float* scale,
                              const float* beta, std::int64_t m, std::int64_t c, bool relu,
                              const ResidualGrad* residual, PartwiseQuantizer<std::int16_t>* parts,
                              const std::function<bool()>& finish) {
    const std::int64_t block = block_rows(c);
    const int threads = pass_threads(m, c);
    const float* dst = residual ? residual->dst : nullptr;
    float* diff_res = residual ? residual->diff : nullptr;
    // The residual's gradient: 0 none, 1 written, 2 added to. Written, it holds afterwards exactly
    // the masked diff_dst the gradient pass needs, which then reads that one stream instead of
    // diff_dst and dst. (It is never diff_src's buffer then: Net::backward has an input fed twice
    // added to.)
    const int residual_pass = !diff_res ? 0 : residual->accumulate ? 2 : 1;
    if (finish && (parts == nullptr || accumulate_src))
        throw Error("batchnorm_train_backward: quantizing only needs parts and a written diff_src");
    bool quantized_only = false;
    // Per thread: sum of dy and of dy (src - mean), dy masked by the ReLU.
    std::vector<double> sums(std::size_t(threads * 2 * c), 0.0);
    const auto run = [&](auto kRelu, auto kMaskFromDst, auto kResidualPass) {
        constexpr bool r = decltype(kRelu)::value, from_dst = decltype(kMaskFromDst)::value;
        constexpr int res = decltype(kResidualPass)::value;
        // diff_dst loaded unconditionally and then masked: a select, so the loops vectorise.
        const auto dy = [=](std::int64_t e, std::int64_t ch) {
            const float g = diff_dst[e];
            if constexpr (!r) return g;
            if constexpr (from_dst) return dst[e] > 0.0f ? g : 0.0f;
            return normalised(src[e], mean[ch], scale[ch], beta[ch]) > 0.0f ? g : 0.0f;
        };
        // The sums' weight, handing it to the residual's gradient on the way.
        const auto dy_to_residual = [=](std::int64_t e, std::int64_t ch) {
            const float g = dy(e, ch);
            if constexpr (res == 1) diff_res[e] = g;
            if constexpr (res == 2) diff_res[e] += g;
            return g;
        };
#pragma omp parallel num_threads(threads)
        {
            const std::int64_t t = omp_get_thread_num();
            const auto [r0, r1] = thread_rows(m, block);
            double* total = &sums[t * 2 * c];
            blocked_sums(src, mean, c, r0, r1, dy_to_residual, total, total + c);
        }
        for (int t = 1; t < threads; ++t)
            for (std::int64_t ch = 0; ch < 2 * c; ++ch) sums[ch] += sums[t * 2 * c + ch];
        // dbeta = sum dy, dgamma = sum dy xhat; dx = gamma rstd (dy - dbeta / M - xhat dgamma / M).
        std::vector<float> mean_dy(static_cast<std::size_t>(c)), k(static_cast<std::size_t>(c));
        for (std::int64_t ch = 0; ch < c; ++ch) {
            diff_beta[ch] += float(sums[ch]);
            diff_gamma[ch] += float(sums[c + ch] * rstd[ch]);
            mean_dy[ch] = float(sums[ch] / double(m));
            k[ch] = float(sums[c + ch] * rstd[ch] * rstd[ch] / double(m));
        }
        if (!diff_src) return;
        const float* md = mean_dy.data();
        const float* kk = k.data();
        // Into `out` (diff_src or, quantizing only, null) for `q` (or null).
        const auto pass = [&](auto kAccumulate, auto kReread, float* out,
                              PartwiseQuantizer<std::int16_t>* q) {
            write_rows(out, m, c, threads, q, [&](std::int64_t i, float* row) {
#pragma omp simd
                for (std::int64_t ch = 0; ch < c; ++ch) {
                    const std::int64_t e = i * c + ch;
                    const float d = decltype(kReread)::value ? diff_res[e] : dy(e, ch);
                    const float g = scale[ch] * (d - md[ch] - (src[e] - mean[ch]) * kk[ch]);
                    row[ch] = decltype(kAccumulate)::value ? row[ch] + g : g;
                }
            });
        };
        using T = std::true_type;
        using F = std::false_type;
        const auto write = [&](float* out, PartwiseQuantizer<std::int16_t>* q) {
            if (res == 1)
                accumulate_src ? pass(T{}, T{}, out, q) : pass(F{}, T{}, out, q);
            else
                accumulate_src ? pass(T{}, F{}, out, q) : pass(F{}, F{}, out, q);
        };
        if (parts == nullptr || !finish) return write(diff_src, parts);
        // Quantized only; where the quantizer's guess did not hold, written after all.
        write(nullptr, parts);
        quantized_only = finish();
        if (!quantized_only) write(diff_src, nullptr);
    };
    const auto with_pass = [&](auto kRelu, auto kMaskFromDst) {
        using std::integral_constant;
        if (residual_pass == 0) return run(kRelu, kMaskFromDst, integral_constant<int, 0>{});
        if (residual_pass == 1) return run(kRelu, kMaskFromDst, integral_constant<int, 1>{});
        run(kRelu, kMaskFromDst, integral_constant<int, 2>{});
    };
    // With a residual the ReLU's mask comes from dst: the residual is part of the output.
    const auto with_mask = [&](auto kRelu) {
        residual ? with_pass(kRelu, std::true_type{}) : with_pass(kRelu, std::false_type{});
    };
    relu ? with_mask(std::true_type{}) : with_mask(std::false_type{});
    return quantized_only;
}

namespace {
// The shape {C} of the parameters, after checking the configuration.
Shape batchnorm_param_shape(const std::string& name, const BatchNormConfig& config) {
    if (config.channels < 1 || !(config.eps > 0.0f) ||
        !(config.momentum >= 0.0f && config.momentum <= 1.0f))
        throw Error("batchnorm2d '" + name +
                    "': needs channels >= 1, eps > 0 and 0 <= momentum <= 1, got " +
                    std::to_string(config.channels) + ", " + std::to_string(config.eps) + ", " +
                    std::to_string(config.momentum));
    return {std::size_t(config.channels)};
}
}  // namespace

BatchNorm2d::BatchNorm2d(std::string name, const BatchNormConfig& config)
    : Layer(std::move(name)),
      config_(config),
      gamma_(this->name() + ".weight", batchnorm_param_shape(this->name(), config)),
      beta_(this->name() + ".bias", gamma_.shape),
      running_mean_(gamma_.value.size(), 0.0f),
      running_var_(gamma_.value.size(), 1.0f) {
    std::fill(gamma_.value.begin(), gamma_.value.end(), 1.0f);
}

BatchNorm2d::~BatchNorm2d() = default;

// Two rounds of sums, as batchnorm_forward_train's two passes: the mean, then the squared
// deviations from it (no cancellation when |mean| >> std).
void BatchNorm2d::forward_synchronised(const Tensor& src, const float* residual, Tensor& dst) {
    const std::int64_t c = config_.channels, m = std::int64_t(src.numel()) / c;
    const float* x = src.data.data();
    std::vector<double> sums(std::size_t(c) + 1, 0.0);
    double* s = sums.data();
#pragma omp parallel for reduction(+ : s[:c]) schedule(static) if (m * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t ch = 0; ch < c; ++ch) s[ch] += x[i * c + ch];
    sums[std::size_t(c)] = double(m);
    sum_(sums, false);
    global_rows_ = sums[std::size_t(c)];
    for (std::int64_t ch = 0; ch < c; ++ch) mean_[ch] = float(sums[ch] / global_rows_);
    std::vector<double> squares(std::size_t(c), 0.0);
    double* q = squares.data();
    const float* mu = mean_.data();
#pragma omp parallel for reduction(+ : q[:c]) schedule(static) if (m * c >= kMinParallelElements)
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t ch = 0; ch < c; ++ch) {
            const double d = double(x[i * c + ch]) - mu[ch];
            q[ch] += d * d;
        }
    sum_(squares, false);
    variance_.resize(std::size_t(c));
    for (std::int64_t ch = 0; ch < c; ++ch) variance_[ch] = float(squares[ch] / global_rows_);
    if (update_statistics(dst, global_rows_))
        batchnorm_forward_stats(dst.data.data(), x, mean_.data(), rstd_.data(), gamma_.value.data(),
                                beta_.value.data(), m, c, config_.relu, residual);
}

bool BatchNorm2d::update_statistics(Tensor& dst, double rows) {
    const float unbias = float(rows) / float(rows - 1);
    for (std::int64_t ch = 0; ch < config_.channels; ++ch) {
        // A NaN or Inf in src: the fused ReLU might turn the NaN outputs into zeros, so the
        // output is made NaN outright, and the NaN check names the layer that made it.
        if (!std::isfinite(mean_[ch]) || !std::isfinite(variance_[ch])) {
            std::fill(dst.data.begin(), dst.data.end(), std::numeric_limits<float>::quiet_NaN());
            return false;
        }
        rstd_[ch] = 1.0f / std::sqrt(variance_[ch] + config_.eps);
        running_mean_[ch] += config_.momentum * (mean_[ch] - running_mean_[ch]);
        running_var_[ch] += config_.momentum * (variance_[ch] * unbias - running_var_[ch]);
    }
    return true;
}

void BatchNorm2d::expect_inputs(Srcs src) const {
    expect_srcs(src, config_.residual ? 2 : 1);
    expect_nhwc(*src[0], config_.channels);
    if (config_.residual) expect_shape(*src[1], src[0]->shape, "the residual input");
}

void BatchNorm2d::forward(Srcs src, Tensor& dst, const Context& ctx) {
    expect_inputs(src);
    quantized_for_consumer_ = false;
    moments_from_input_ = false;
    iteration_ = ctx.iteration;
    const std::int64_t c = config_.channels, m = std::int64_t(src[0]->numel()) / c;
    const float* residual = config_.residual ? src[1]->data.data() : nullptr;
    mode_ = ctx.mode;
    dst.resize(src[0]->shape);
    // A consumer that quantizes dst whole gets it quantized in a train-mode pass, from the caches.
    // Its matrix then holds what this forward made, or is marked as holding nothing: never what an
    // earlier forward left there (one that failed before the consumer ran).
    QuantizationTarget target;
    for (Layer* consumer : consumers_)
        if ((target = consumer->input_quantization(dst.shape)).matrix != nullptr) break;
    if (target.matrix != nullptr) target.matrix->produced = false;
    mean_.resize(std::size_t(c));
    rstd_.resize(std::size_t(c));
    if (mode_ == Mode::eval) {
        for (std::int64_t ch = 0; ch < c; ++ch) {
            mean_[ch] = running_mean_[ch];
            rstd_[ch] = 1.0f / std::sqrt(running_var_[ch] + config_.eps);
        }
        batchnorm_forward_stats(dst.data.data(), src[0]->data.data(), mean_.data(), rstd_.data(),
                                gamma_.value.data(), beta_.value.data(), m, c, config_.relu,
                                residual);
        return;
    }
    if (m < 2)
        fail("train mode needs more than one value per channel, got shape " +
             shape_string(src[0]->shape));
    if (sum_) return forward_synchronised(*src[0], residual, dst);
    variance_.resize(std::size_t(c));
    // From the layer that wrote src (input_moments), or in a pass of their own: the same bits.
    moments_from_input_ = moments_.take(src[0]->data.data(), m, c, ctx.iteration);
    if (!moments_from_input_) moments_.compute(src[0]->data.data(), m, c);
    moments_.merge(mean_.data(), variance_.data());
    scale_.resize(std::size_t(c));
    if (!update_statistics(dst, double(m))) {
        // dst is NaN; so are the gradients of a backward that follows.
        std::fill(scale_.begin(), scale_.end(), std::numeric_limits<float>::quiet_NaN());
        std::fill(rstd_.begin(), rstd_.end(), std::numeric_limits<float>::quiet_NaN());
        return;
    }
    for (std::int64_t ch = 0; ch < c; ++ch) scale_[ch] = gamma_.value[ch] * rstd_[ch];
    std::optional<PartwiseQuantizer<std::int16_t>> parts;
    if (target.matrix != nullptr)
        target.matrix->begin_parts(parts, m, c, target.format, ctx.iteration);
    batchnorm_train_normalise(dst.data.data(), src[0]->data.data(), mean_.data(), scale_.data(),
                              beta_.value.data(), m, c, config_.relu, residual,
                              parts ? &*parts : nullptr);
    quantized_for_consumer_ =
        parts && target.matrix->end_parts(*parts, dst.data.data(), target.format, ctx.iteration);
}

MomentBlocks* BatchNorm2d::input_moments(const Layer& writer, const Shape& src,
                                         const Context& ctx) {
    const bool fits = src.size() == 4 && std::int64_t(src[3]) == config_.channels;
    const bool first = &writer == producer_;  // not the residual's
    return ctx.mode == Mode::train && !sum_ && fits && first ? &moments_ : nullptr;
}

void BatchNorm2d::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

void BatchNorm2d::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst,
                                DiffSrcs diff_src, Overwrite overwrite) {
    expect_inputs(src);
    expect_shape(dst, src[0]->shape, "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    quantized_for_producer_ = false;
    // The gradient it writes whole, the producer of src may take quantized from a train-mode pass;
    // otherwise the producer's matrix is marked as holding nothing (as in forward).
    QuantizationTarget target;
    if (producer_ != nullptr) target = producer_->output_gradient_quantization(src[0]->shape);
    if (target.matrix != nullptr) target.matrix->produced = false;
    const std::int64_t c = config_.channels, m = std::int64_t(src[0]->numel()) / c;
    float* diff_src_data = diff_src[0] ? diff_src[0]->data.data() : nullptr;
    // The reference functions add: a fresh diff_src starts from zero for them.
    const bool write = overwrite[0] && diff_src_data;
    const bool reference = mode_ == Mode::eval || sum_;
    if (write && reference) std::fill_n(diff_src_data, m * c, 0.0f);
    ResidualGrad residual;
    if (config_.residual) {
        residual.dst = dst.data.data();
        residual.diff = diff_src[1] ? diff_src[1]->data.data() : nullptr;
        residual.accumulate = !overwrite[1];
        // The reference functions know no residual: its gradient, diff_dst through the ReLU's
        // mask (relu_backward's), is passed here, and their own mask is read from dst too.
        if (reference && residual.diff) {
            const float* dy = diff_dst.data.data();
            const float* y = dst.data.data();
            float* d = residual.diff;
            const bool relu = config_.relu, add = residual.accumulate;
#pragma omp parallel for simd schedule(static) if (m * c >= kMinParallelElements)
            for (std::int64_t e = 0; e < m * c; ++e) {
                const float g = !relu || y[e] > 0.0f ? dy[e] : 0.0f;
                d[e] = add ? d[e] + g : g;
            }
        }
    }
    const float* relu_dst = config_.relu ? dst.data.data() : nullptr;
    if (mode_ == Mode::eval) {
        batchnorm_backward(diff_src_data, gamma_.settle_grad().data(), beta_.settle_grad().data(),
                           diff_dst.data.data(), src[0]->data.data(), mean_.data(), rstd_.data(),
                           gamma_.value.data(), m, c, false, relu_dst);
        return;
    }
    if (sum_) {
        const auto run = [&](auto relu) {
            nn::backward<decltype(relu)::value>(
                diff_src_data, gamma_.settle_grad().data(), beta_.settle_grad().data(),
                diff_dst.data.data(), src[0]->data.data(), mean_.data(), rstd_.data(),
                gamma_.value.data(), m, c, true, relu_dst, sum_, global_rows_);
        };
        return relu_dst ? run(std::true_type{}) : run(std::false_type{});
    }
    std::optional<PartwiseQuantizer<std::int16_t>> parts;
    if (write && target.matrix != nullptr)
        target.matrix->begin_parts(parts, m, c, target.format, iteration_);
    const auto finish = [&] {
        return target.matrix->end_parts(*parts, diff_src_data, target.format, iteration_);
    };
    // A producer that reads only the quantized gradient gets only that, unless the quantizer's
    // guess fails: diff_src is not written (at ResNet-50's shapes, a write of 1.4 GB per step).
    const bool only = parts && !target.reads_fp32;
    const bool quantized_only = batchnorm_train_backward(
        diff_src_data, diff_src_data && !write, gamma_.settle_grad().data(),
        beta_.settle_grad().data(), diff_dst.data.data(), src[0]->data.data(), mean_.data(),
        rstd_.data(), scale_.data(), beta_.value.data(), m, c, config_.relu,
        config_.residual ? &residual : nullptr, parts ? &*parts : nullptr,
        only ? std::function<bool()>(finish) : std::function<bool()>());
    quantized_for_producer_ = only ? quantized_only : parts && finish();
}

namespace {

// scale (C) for one pixel's channels x (C): k + alpha / size * (window sum of x^2).
void lrn_scale(float* scale, const float* x, std::int64_t c, const LrnConfig& cfg) {
    const std::int64_t half = cfg.size / 2;
    const float alpha_over_size = cfg.alpha / float(cfg.size);
    for (std::int64_t ch = 0; ch < c; ++ch) {
        float sum = 0.0f;
        for (std::int64_t j = std::max<std::int64_t>(ch - half, 0); j <= std::min(ch + half, c - 1);
             ++j)
            sum += x[j] * x[j];
        scale[ch] = cfg.k + alpha_over_size * sum;
    }
}

}  // namespace

void lrn_forward(float* dst, const float* src, std::int64_t m, std::int64_t c,
                 const LrnConfig& config) {
#pragma omp parallel if (m * c >= kMinParallelElements)
    {
        std::vector<float> scale(static_cast<std::size_t>(c));
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < m; ++i) {
            lrn_scale(scale.data(), src + i * c, c, config);
            for (std::int64_t ch = 0; ch < c; ++ch)
                dst[i * c + ch] = src[i * c + ch] * std::pow(scale[ch], -config.beta);
        }
    }
}

void lrn_backward(float* diff_src, const float* diff_dst, const float* dst, const float* src,
                  std::int64_t m, std::int64_t c, const LrnConfig& config) {
    // d dst_j / d src_c = [j == c] scale_c^-beta - 2 alpha beta / size * src_c * dst_j / scale_j
    // for every j whose window holds c (|j - c| <= size / 2, symmetric).
    const std::int64_t half = config.size / 2;
    const float coeff = 2.0f * config.alpha * config.beta / float(config.size);
#pragma omp parallel if (m * c >= kMinParallelElements)
    {
        std::vector<float> scale(static_cast<std::size_t>(c)), ratio(static_cast<std::size_t>(c));
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < m; ++i) {
            const float* x = src + i * c;
            const float* y = dst + i * c;
            const float* dy = diff_dst + i * c;
            lrn_scale(scale.data(), x, c, config);
            for (std::int64_t j = 0; j < c; ++j) ratio[j] = dy[j] * y[j] / scale[j];
            for (std::int64_t ch = 0; ch < c; ++ch) {
                float sum = 0.0f;
                for (std::int64_t j = std::max<std::int64_t>(ch - half, 0);
                     j <= std::min(ch + half, c - 1); ++j)
                    sum += ratio[j];
                diff_src[i * c + ch] +=
                    dy[ch] * std::pow(scale[ch], -config.beta) - coeff * x[ch] * sum;
            }
        }
    }
}

struct Lrn::OnednnPlan {
    dnnl::memory::desc data_md;  // (N, C, H, W) in NHWC order
    dnnl::lrn_forward::primitive_desc train_pd;
    dnnl::lrn_forward train;
    dnnl::lrn_forward infer;  // made on the first eval-mode forward
    dnnl::lrn_backward bwd;   // made on the first backward
    dnnl::memory workspace;   // of the last train-mode forward, for backward
};

Lrn::Lrn(std::string name, const LrnConfig& config)
    : Layer(std::move(name)),
      config_(config),
      avx512_(config.beta == 0.75f && active_isa() >= Isa::avx512) {
    if (config.size < 1 || config.size % 2 == 0 || !(config.k > 0.0f) || !(config.alpha >= 0.0f))
        fail("needs an odd size >= 1, k > 0 and alpha >= 0, got size " +
             std::to_string(config.size) + ", k " + std::to_string(config.k) + ", alpha " +
             std::to_string(config.alpha));
}

Lrn::~Lrn() = default;

namespace {
// oneDNN's across-channels LRN divides alpha by local_size (Caffe's convention, as LrnConfig's);
// NnLrn.LayerMatchesTheReferenceFunctions checks it (beta 0.5 and 1, and every beta under
// DFP_ISA=avx2).
dnnl::lrn_forward::desc lrn_forward_desc(dnnl::prop_kind kind, const dnnl::memory::desc& md,
                                         const LrnConfig& cfg) {
    return {kind, dnnl::algorithm::lrn_across_channels, md, cfg.size, cfg.alpha, cfg.beta, cfg.k};
}
}  // namespace

Lrn::OnednnPlan& Lrn::plan(const Shape& shape) {
    auto& slot = plans_[shape];
    if (slot) return *slot;
    auto p = std::make_unique<OnednnPlan>();
    try {
        using dnnl::memory;
        const memory::dim n = memory::dim(shape[0]), h = memory::dim(shape[1]),
                          w = memory::dim(shape[2]), c = memory::dim(shape[3]);
        p->data_md = memory::desc({n, c, h, w}, memory::data_type::f32, memory::format_tag::nhwc);
        p->train_pd = dnnl::lrn_forward::primitive_desc(
            lrn_forward_desc(dnnl::prop_kind::forward_training, p->data_md, config_), cpu_engine());
        p->train = dnnl::lrn_forward(p->train_pd);
        p->workspace = memory(p->train_pd.workspace_desc(), cpu_engine());
    } catch (const dnnl::error& e) {
        fail("oneDNN cannot set up local response normalisation of input " + shape_string(shape) +
             ": " + e.what());
    }
    slot = std::move(p);
    return *slot;
}

void Lrn::forward(Srcs src, Tensor& dst, const Context& ctx) {
    expect_srcs(src, 1);
    expect_nhwc(*src[0]);
    dst.resize(src[0]->shape);
    workspace_shape_.clear();
    if (dst.numel() == 0) return;
    if (avx512_) {
        const std::int64_t c = std::int64_t(src[0]->shape[3]);
        return lrn_forward_avx512(dst.data.data(), src[0]->data.data(),
                                  std::int64_t(dst.numel()) / c, c, config_);
    }
    OnednnPlan& p = plan(src[0]->shape);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(p.data_md, src[0]->data.data())},
                                               {DNNL_ARG_DST, wrap(p.data_md, dst.data.data())}};
    if (ctx.mode == Mode::train) {
        args[DNNL_ARG_WORKSPACE] = p.workspace;
        p.train.execute(cpu_stream(), args);
        workspace_shape_ = src[0]->shape;
    } else {
        try {
            if (!p.infer)
                p.infer = dnnl::lrn_forward(dnnl::lrn_forward::primitive_desc(
                    lrn_forward_desc(dnnl::prop_kind::forward_inference, p.data_md, config_),
                    cpu_engine()));
        } catch (const dnnl::error& e) {
            fail(std::string("oneDNN cannot set up the inference LRN: ") + e.what());
        }
        p.infer.execute(cpu_stream(), args);
    }
    cpu_stream().wait();
}

void Lrn::backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) {
    backward_into(src, dst, diff_dst, diff_src, {});
}

void Lrn::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                        Overwrite overwrite) {
    expect_srcs(src, 1);
    expect_nhwc(*src[0]);
    expect_shape(dst, src[0]->shape, "dst");
    expect_shape(diff_dst, dst.shape, "diff_dst");
    if (!diff_src[0] || dst.numel() == 0) return;
    const std::int64_t c = std::int64_t(src[0]->shape[3]), m = std::int64_t(dst.numel()) / c;
    // The reference recomputes what it needs: it runs when there is no workspace for this src,
    // and for size 1, where oneDNN 2.6.3's AVX-512 backward LRN crashes creating its kernel.
    float* out = diff_src[0]->data.data();
    const bool write = overwrite[0];
    if (avx512_)
        return lrn_backward_avx512(out, !write, diff_dst.data.data(), dst.data.data(),
                                   src[0]->data.data(), m, c, config_);
    if (workspace_shape_ != src[0]->shape || config_.size == 1) {
        if (write) std::fill_n(out, m * c, 0.0f);  // the reference adds
        return lrn_backward(out, diff_dst.data.data(), dst.data.data(), src[0]->data.data(), m, c,
                            config_);
    }
    OnednnPlan& p = plan(src[0]->shape);
    try {
        if (!p.bwd)
            p.bwd = dnnl::lrn_backward(dnnl::lrn_backward::primitive_desc(
                dnnl::lrn_backward::desc(dnnl::algorithm::lrn_across_channels, p.data_md, p.data_md,
                                         config_.size, config_.alpha, config_.beta, config_.k),
                cpu_engine(), p.train_pd));
    } catch (const dnnl::error& e) {
        fail(std::string("oneDNN cannot set up the backward LRN: ") + e.what());
    }
    const GradOutput grad(out, m * c, write, diff_src_scratch_);
    p.bwd.execute(cpu_stream(), {{DNNL_ARG_SRC, wrap(p.data_md, src[0]->data.data())},
                                 {DNNL_ARG_DIFF_DST, wrap(p.data_md, diff_dst.data.data())},
                                 {DNNL_ARG_WORKSPACE, p.workspace},
                                 {DNNL_ARG_DIFF_SRC, wrap(p.data_md, grad.data())}});
    cpu_stream().wait();
    grad.finish();
}

}  // namespace dfp::nn
