#include "dist/reduce.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>

#include "base/error.hpp"
#include "format/format.hpp"
#include "format/quantize_kernels.hpp"

namespace dfp::dist {
namespace {

constexpr int kBits = 16;
constexpr std::size_t kChunk = std::size_t{1} << 16;  // elements per OpenMP work item
constexpr std::size_t kParallelMin = std::size_t{1} << 15;

std::int64_t chunks(std::size_t n) {
    return static_cast<std::int64_t>((n + kChunk - 1) / kChunk);
}
std::size_t chunk_size(std::size_t n, std::int64_t c) {
    return std::min(kChunk, n - static_cast<std::size_t>(c) * kChunk);
}

}  // namespace

std::uint32_t max_abs_bits(std::span<const float> x) {
    const QuantizeKernels& k = quantize_kernels(active_isa());
    std::uint32_t result = 0;
#pragma omp parallel for schedule(static) reduction(max : result) if (x.size() >= kParallelMin)
    for (std::int64_t c = 0; c < chunks(x.size()); ++c)
        result = std::max(result, k.max_abs_bits(x.data() + c * kChunk, chunk_size(x.size(), c)));
    return result;
}

int shared_exponent_of(std::uint32_t max_abs_bits) {
    return shared_exponent(std::bit_cast<float>(max_abs_bits), kBits, 0);
}

void quantize_s16(std::span<const float> src, int exponent, std::span<std::int16_t> dst) {
    if (dst.size() != src.size()) throw Error("dist::quantize_s16: sizes differ");
    const QuantizeKernels& k = quantize_kernels(active_isa());
    const Format format = dfp16_tensor();
#pragma omp parallel for schedule(static) if (src.size() >= kParallelMin)
    for (std::int64_t c = 0; c < chunks(src.size()); ++c) {
        const QuantizeRun run{pow2(-exponent), static_cast<float>(format.max_mantissa()),
                              Rounding::nearest_even, 0, static_cast<std::uint64_t>(c) * kChunk};
        k.quantize_s16(src.data() + c * kChunk, dst.data() + c * kChunk, chunk_size(src.size(), c),
                       run);
    }
}

void dequantize_s16(std::span<const std::int16_t> src, int exponent, std::span<float> dst) {
    if (dst.size() != src.size()) throw Error("dist::dequantize_s16: sizes differ");
    const QuantizeKernels& k = quantize_kernels(active_isa());
#pragma omp parallel for schedule(static) if (src.size() >= kParallelMin)
    for (std::int64_t c = 0; c < chunks(src.size()); ++c)
        k.dequantize_s16(src.data() + c * kChunk, dst.data() + c * kChunk,
                         chunk_size(src.size(), c), pow2(exponent));
}

void average_chunks_s16(std::span<const std::int16_t> recv, int ranks,
                        std::span<std::int16_t> dst) {
    if (ranks < 1 || ranks > kMaxRanksDfp16 || recv.size() != dst.size() * std::size_t(ranks))
        throw Error("dist::average_chunks_s16: needs 1.." + std::to_string(kMaxRanksDfp16) +
                    " ranks and one chunk per rank");
    const auto n = static_cast<std::int64_t>(dst.size());
    // |sum| < 2^31 and ranks < 2^17: sum / ranks in double is correctly rounded, and it is a tie
    // exactly when the true quotient is one, so nearbyint (ties to even) rounds it correctly.
#pragma omp parallel for schedule(static) if (recv.size() >= kParallelMin)
    for (std::int64_t i = 0; i < n; ++i) {
        std::int32_t sum = 0;
        for (int r = 0; r < ranks; ++r) sum += recv[std::size_t(r) * dst.size() + std::size_t(i)];
        dst[std::size_t(i)] = static_cast<std::int16_t>(
            std::nearbyint(static_cast<double>(sum) / static_cast<double>(ranks)));
    }
}

void average_chunks_f32(std::span<const float> recv, int ranks, std::span<float> dst) {
    if (ranks < 1 || recv.size() != dst.size() * std::size_t(ranks))
        throw Error("dist::average_chunks_f32: needs one chunk per rank");
    const auto n = static_cast<std::int64_t>(dst.size());
    const float count = static_cast<float>(ranks);
#pragma omp parallel for schedule(static) if (recv.size() >= kParallelMin)
    for (std::int64_t i = 0; i < n; ++i) {
        float sum = 0;
        for (int r = 0; r < ranks; ++r) sum += recv[std::size_t(r) * dst.size() + std::size_t(i)];
        dst[std::size_t(i)] = sum / count;
    }
}

}  // namespace dfp::dist
