#include "nn/layer.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.hpp"
#include "format/rng.hpp"

namespace dfp::nn {

void Layer::fail(const std::string& what) const {
    throw Error(std::string(kind()) + " '" + name_ + "': " + what);
}

void Layer::expect_srcs(Srcs src, int count) const {
    const bool ok =
        count >= 0 ? static_cast<int>(src.size()) == count : static_cast<int>(src.size()) >= -count;
    if (!ok)
        fail("takes " +
             (count >= 0 ? std::to_string(count) : "at least " + std::to_string(-count)) +
             " input(s), got " + std::to_string(src.size()));
}

void Layer::expect_nhwc(const Tensor& t, std::int64_t channels) const {
    if (t.shape.size() != 4) fail("expects an NHWC input, got shape " + shape_string(t.shape));
    if (channels >= 0 && static_cast<std::int64_t>(t.shape[3]) != channels)
        fail("expects " + std::to_string(channels) + " channels, got shape " +
             shape_string(t.shape));
}

void Layer::expect_shape(const Tensor& t, const Shape& shape, const char* what) const {
    if (t.shape != shape)
        fail(std::string(what) + " has shape " + shape_string(t.shape) + ", expected " +
             shape_string(shape));
}

std::uint64_t name_seed(std::string_view name) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char ch : name) h = (h ^ ch) * 0x100000001b3ULL;
    return h;
}

void init_he_uniform(Param& p, std::int64_t fan_in) {
    const float bound = std::sqrt(6.0f / static_cast<float>(fan_in));
    const std::uint64_t seed = name_seed(p.name);
    constexpr float kUnit = 1.0f / 16777216.0f;  // 24 random bits -> [0, 1), exact in FP32
    for (std::size_t i = 0; i < p.value.size(); ++i) {
        const float u = static_cast<float>(random_bits(seed, i) >> 8) * kUnit;
        p.value[i] = (2.0f * u - 1.0f) * bound;
    }
}

void Layer::backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                          Overwrite overwrite) {
    for (std::size_t i = 0; i < diff_src.size(); ++i)
        if (overwrite[i] && diff_src[i])
            std::fill(diff_src[i]->data.begin(), diff_src[i]->data.end(), 0.0f);
    backward(src, dst, diff_dst, diff_src);
}

bool streamable(std::int64_t n, std::initializer_list<const float*> outputs) {
    return n >= kStreamMinElements &&
           std::all_of(outputs.begin(), outputs.end(), [](const float* p) {
               return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
           });
}

void store_fence() {
    _mm_sfence();
}

void accumulate(float* dst, const float* src, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (std::int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

void add_bias(float* dst, const float* bias, std::int64_t rows, std::int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j) dst[i * cols + j] += bias[j];
}

void add_column_sums(float* diff_bias, const float* diff_dst, std::int64_t rows, std::int64_t cols,
                     const float* keep) {
    // Chunks of a fixed number of rows are summed apart (in parallel), then the chunk sums in
    // order: the same bits at any thread count. A convolution's diff_dst has 10^5-10^6 rows.
    constexpr std::int64_t kChunkRows = 256;
    const std::int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
    // Kept between calls (megabytes for a large convolution); the OpenMP threads see the calling
    // thread's buffer through `sums`, not their own thread_local one.
    thread_local std::vector<float> partial;
    partial.assign(std::size_t(chunks * cols), 0.0f);
    float* const sums = partial.data();
#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
    for (std::int64_t q = 0; q < chunks; ++q) {
        float* sum = sums + q * cols;
        for (std::int64_t i = q * kChunkRows; i < std::min(rows, (q + 1) * kChunkRows); ++i)
            if (keep == nullptr) {
#pragma omp simd
                for (std::int64_t j = 0; j < cols; ++j) sum[j] += diff_dst[i * cols + j];
            } else {
                // Loaded unconditionally: the mask is a select, as in relu_backward.
#pragma omp simd
                for (std::int64_t j = 0; j < cols; ++j) {
                    const float dy = diff_dst[i * cols + j];
                    sum[j] += keep[i * cols + j] > 0.0f ? dy : 0.0f;
                }
            }
    }
    for (std::int64_t q = 0; q < chunks; ++q)
        for (std::int64_t j = 0; j < cols; ++j) diff_bias[j] += sums[q * cols + j];
}

}  // namespace dfp::nn
