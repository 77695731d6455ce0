// Counter-based random bits for stochastic rounding: the bits for element `index` depend only on
// (seed, index), never on thread count, block order or timing, so a run is reproducible and the
// vector and scalar paths agree bit for bit.
#pragma once

#include <cstdint>

namespace dfp {

// A bijective 32-bit mixer with low bias (xor-shift / multiply rounds; constants from the
// "hash prospector" search, C. Wellons, 2018).
constexpr std::uint32_t mix32(std::uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

// Key for the 2^32 indices that share `index_hi`; vector kernels compute it once per run.
constexpr std::uint32_t rng_key(std::uint64_t seed, std::uint32_t index_hi) {
    return mix32(static_cast<std::uint32_t>(seed) ^
                 mix32(static_cast<std::uint32_t>(seed >> 32) ^ mix32(index_hi + 0x9e3779b9U)));
}

// 32 uniform random bits for one element, given the key of its index's high half.
constexpr std::uint32_t random_bits_keyed(std::uint32_t key, std::uint32_t index_lo) {
    return mix32(index_lo ^ key);
}

constexpr std::uint32_t random_bits(std::uint64_t seed, std::uint64_t index) {
    return random_bits_keyed(rng_key(seed, static_cast<std::uint32_t>(index >> 32)),
                             static_cast<std::uint32_t>(index));
}

}  // namespace dfp
