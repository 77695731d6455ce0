#include "integer/narrow.hpp"

#include <algorithm>
#include <bit>

namespace dfp::integer {
namespace {
constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;
constexpr int kInt8MagnitudeBits = 7;
}  // namespace

int bit_length(std::int64_t v) {
    return static_cast<int>(std::bit_width(static_cast<std::uint64_t>(v < 0 ? -v : v)));
}

int max_bit_length(const std::int32_t* src, std::int64_t n) {
    // The OR of the magnitudes has the bit length of their maximum, without comparisons.
    std::uint64_t bits = 0;
#pragma omp parallel for reduction(| : bits) if (n >= kParallelElements)
    for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t v = src[i];
        bits |= static_cast<std::uint64_t>(v < 0 ? -v : v);
    }
    return static_cast<int>(std::bit_width(bits));
}

int narrow_int32(const std::int32_t* src, std::int64_t n, std::int8_t* dst) {
    const int k = std::max(max_bit_length(src, n) - kInt8MagnitudeBits, 0);
#pragma omp parallel for if (n >= kParallelElements)
    for (std::int64_t i = 0; i < n; ++i) {
        // Rounding up can carry the largest magnitude to 128: the clamp takes it back.
        const std::int64_t m = shift_pseudo_stochastic(src[i], k);
        dst[i] = static_cast<std::int8_t>(std::clamp<std::int64_t>(m, -kInt8Max, kInt8Max));
    }
    return k;
}

void narrow_to_int8(const std::int32_t* src, const Shape& shape, int src_exponent,
                    Int8Tensor& dst) {
    dst.resize(shape);
    dst.exponent =
        src_exponent + narrow_int32(src, static_cast<std::int64_t>(dst.numel()), dst.data.data());
}

}  // namespace dfp::integer
