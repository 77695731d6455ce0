// The DFP primitives of Das et al. (2018), elementwise on whole tensors, with the paper's
// exponent rules. Both operands must have the same shape and format (the same blocks); each
// block combines with the block at the same place. Results are wide (INT32 mantissas) until
// down_convert() gives them a fresh shared exponent and a narrower width.
#pragma once

#include <cstdint>
#include <string_view>

#include "format/dfp_tensor.hpp"

namespace dfp {

// Product: mantissa m_a * m_b (exact in INT32), exponent E_a + E_b.
template <class M>
DfpWideTensor multiply(const DfpTensor<M>& a, const DfpTensor<M>& b);

// Sum with exponent alignment: per block the result takes the larger exponent E = max(E_a, E_b)
// (an all-zero block has no say), the operand with the smaller exponent is shifted right by the
// difference with `rounding`, and the mantissas are added; the sum may need one more bit than
// the operands. Throws dfp::Error if a sum of INT32 operands leaves INT32.
template <class M>
DfpWideTensor add(const DfpTensor<M>& a, const DfpTensor<M>& b, Rounding rounding,
                  std::uint64_t seed = 0);

// Down-conversion to `bits`-bit mantissas with a fresh exponent per block from the block's own
// largest magnitude: with L the bit length of max |m|, shift right by
//   R_s = max(0, L - (bits - 1) + options.shift)
// (values that already fit stay exact), round with options.rounding, clamp to +-(2^(bits-1)-1)
// and set E_out = E_in + R_s. M is int16_t or int8_t.
template <class M>
DfpTensor<M> down_convert(const DfpWideTensor& x, int bits, const QuantizeOptions& options,
                          std::string_view name);

// FP32 values of a wide tensor, each correctly rounded (through double: INT32 mantissas have
// more bits than FP32).
std::vector<float> dequantize_wide(const DfpWideTensor& x);

}  // namespace dfp
