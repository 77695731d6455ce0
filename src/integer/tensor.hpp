// The tensor of NITI's integer-only training (Wang et al., IEEE TPDS 2022; PAPERS.md section 2):
// int8 values clamped to +-127 with one power-of-two exponent for the whole tensor,
// x[i] = data[i] * 2^exponent. Feature maps are NHWC like nn::Tensor; Linear outputs {N, F}.
#pragma once

#include <cstdint>
#include <vector>

#include "base/aligned.hpp"
#include "format/format.hpp"

namespace dfp::integer {

// The symmetric int8 range of every NITI tensor: -128 never occurs, so negation is exact.
inline constexpr int kInt8Max = 127;

struct Int8Tensor {
    Shape shape;
    AlignedVector<std::int8_t> data;
    int exponent = 0;

    // Keeps the allocation when the size does not grow, so buffers settle after one step.
    void resize(const Shape& s) {
        shape = s;
        data.resize(shape_numel(s));
    }
    std::size_t numel() const { return data.size(); }
};

}  // namespace dfp::integer
