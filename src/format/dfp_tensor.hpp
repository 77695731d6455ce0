// A tensor in Dynamic Fixed Point: shape, format, integer mantissas (row-major) and one exponent
// per block. Mantissa type: int16_t (DFP16 and any b <= 16), int8_t (b <= 8), or int32_t for
// the wide results of DFP primitives (products and sums before down-conversion).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/aligned.hpp"
#include "format/format.hpp"

namespace dfp {

template <class M>
struct DfpTensor {
    Shape shape;
    Format format;
    AlignedVector<M> mantissas;  // shape_numel(shape) values
    std::vector<int> exponents;  // BlockLayout(shape, format).exponents() values
};

using Dfp16Tensor = DfpTensor<std::int16_t>;
using Dfp8Tensor = DfpTensor<std::int8_t>;
using DfpWideTensor = DfpTensor<std::int32_t>;

// How the elements of a row-major tensor map to its exponents, as "runs": contiguous elements
// that share one exponent. Kernels process one run per call; runs are independent, so threads
// take them in any order and the result does not change.
//   tensor: chunks of at most kTensorChunk elements, all exponent 0;
//   axis a: run (o, c) of the prod(shape[a+1:]) elements at outer index o, index c on the axis;
//   block:  run (row, j) of the block j of a row of the last axis (the last one may be shorter).
struct Run {
    std::size_t offset;
    std::size_t count;
    std::size_t exponent;
};

class BlockLayout {
  public:
    static constexpr std::size_t kTensorChunk = std::size_t{1} << 16;

    BlockLayout(const Shape& shape, const Format& format);
    std::size_t exponents() const { return exponents_; }
    std::size_t runs() const { return runs_; }
    Run run(std::size_t i) const {
        switch (kind_) {
            case Granularity::tensor: {
                const std::size_t offset = i * kTensorChunk;
                return {offset, std::min(kTensorChunk, numel_ - offset), 0};
            }
            case Granularity::axis:
                return {i * inner_, inner_, i % axis_len_};
            case Granularity::block: {
                const std::size_t row = i / blocks_per_row_, j = i % blocks_per_row_;
                const std::size_t start = j * block_;
                return {row * row_len_ + start, std::min(block_, row_len_ - start), i};
            }
        }
        return {0, 0, 0};
    }

  private:
    Granularity kind_;
    std::size_t numel_ = 0, exponents_ = 0, runs_ = 0;
    std::size_t inner_ = 1, axis_len_ = 1;                      // axis
    std::size_t row_len_ = 1, block_ = 1, blocks_per_row_ = 1;  // block
};

}  // namespace dfp
