#include "integer/narrow.hpp"

#include <algorithm>
#include <bit>

#include "integer/narrow_kernels.hpp"

namespace dfp::integer {
namespace {
constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;
constexpr int kInt8MagnitudeBits = 7;
}  // namespace

int bit_length(std::int64_t v) {
    return static_cast<int>(std::bit_width(static_cast<std::uint64_t>(v < 0 ? -v : v)));
}

int max_bit_length(const std::int32_t* src, std::int64_t n) {
    // The OR of the magnitudes has the bit length of their maximum, without comparisons;
    // |INT32_MIN| = 2^31 fits the unsigned 32-bit lanes.
    std::uint32_t bits = 0;
#pragma omp parallel for reduction(| : bits) if (n >= kParallelElements)
    for (std::int64_t i = 0; i < n; ++i) {
        const auto u = static_cast<std::uint32_t>(src[i]);
        bits |= src[i] < 0 ? 0u - u : u;
    }
    return static_cast<int>(std::bit_width(bits));
}

void narrow_shift_portable(const std::int32_t* src, std::int64_t n, int k, std::int8_t* dst) {
    // round_shift's pseudo-stochastic rule with k fixed: remainder rem = |v| mod 2^k, hi = its top
    // ceil(k/2) bits, lo = its low floor(k/2) bits (doubled for odd k); up iff hi > lo. hi and lo
    // are below 2^17, so signed 32-bit compares serve.
    const std::uint32_t rem_mask = k == 0 ? 0 : (std::uint32_t{1} << k) - 1;
    const int lo_bits = k / 2, odd = k % 2;
    const std::uint32_t lo_mask = (std::uint32_t{1} << lo_bits) - 1;
    for (std::int64_t i = 0; i < n; ++i) {
        const auto u = static_cast<std::uint32_t>(src[i]);
        const std::uint32_t magnitude = src[i] < 0 ? 0u - u : u;
        const std::uint32_t rem = magnitude & rem_mask;
        const auto hi = static_cast<std::int32_t>(rem >> lo_bits);
        const auto lo = static_cast<std::int32_t>((rem & lo_mask) << odd);
        // Rounding up can carry the largest magnitude to 128: the clamp takes it back.
        const auto m = static_cast<std::int32_t>(
            std::min<std::uint32_t>((magnitude >> k) + (hi > lo ? 1u : 0u), kInt8Max));
        dst[i] = static_cast<std::int8_t>(src[i] < 0 ? -m : m);
    }
}

int narrow_int32(const std::int32_t* src, std::int64_t n, std::int8_t* dst, Isa isa) {
    const int k = std::max(max_bit_length(src, n) - kInt8MagnitudeBits, 0);
    const auto shift = isa >= Isa::avx512 ? narrow_shift_avx512 : narrow_shift_portable;
    // Chunks of whole cache lines, so that threads never share one of dst.
    constexpr std::int64_t kChunk = std::int64_t{1} << 12;
#pragma omp parallel for if (n >= kParallelElements)
    for (std::int64_t i = 0; i < n; i += kChunk)
        shift(src + i, std::min(kChunk, n - i), k, dst + i);
    return k;
}

int narrow_int32_reference(const std::int32_t* src, std::int64_t n, std::int8_t* dst) {
    int b = 0;
    for (std::int64_t i = 0; i < n; ++i) b = std::max(b, bit_length(src[i]));
    const int k = std::max(b - kInt8MagnitudeBits, 0);
    for (std::int64_t i = 0; i < n; ++i)
        dst[i] = static_cast<std::int8_t>(
            std::clamp<std::int64_t>(shift_pseudo_stochastic(src[i], k), -kInt8Max, kInt8Max));
    return k;
}

void narrow_to_int8(const std::int32_t* src, const Shape& shape, int src_exponent,
                    Int8Tensor& dst) {
    dst.resize(shape);
    dst.exponent =
        src_exponent + narrow_int32(src, static_cast<std::int64_t>(dst.numel()), dst.data.data());
}

}  // namespace dfp::integer
