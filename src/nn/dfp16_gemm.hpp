// The DFP16 passes of Conv2d and Linear (FPROP, BPROP, WTGRAD) on the integer GEMM: each FP32
// operand is quantized into a buffer the layer keeps (so backward reuses what forward quantized),
// then kernels::gemm_s16s16f32 multiplies the mantissas into INT32 chains and scales them by
// 2^(eA + eB) into FP32 (PAPERS.md section 1, "Primitives").
#pragma once

#include <cstdint>
#include <string>

#include "format/dfp_tensor.hpp"
#include "kernels/gemm.hpp"
#include "nn/layer.hpp"
#include "precision/policy.hpp"

namespace dfp::nn {

// An FP32 tensor quantized to DFP16 as the row-major matrix (rows, cols) that the GEMM reads: a
// Linear src (N, I), an NHWC activation (N*H*W, C), conv weights (K, KH*KW*C). The format's
// granularity applies to that matrix: one exponent per tensor, or per row (axis 0) or column
// (axis 1).
struct Dfp16Matrix {
    std::string name;  // "<layer>.<role>", e.g. "conv2.src": names the tensor in errors
    Dfp16Tensor q;

    std::int64_t rows() const { return static_cast<std::int64_t>(q.shape.at(0)); }
    std::int64_t cols() const { return static_cast<std::int64_t>(q.shape.at(1)); }
    // Quantizes src (rows, cols), reusing the buffers; NaN or Inf throws dfp::Error naming `name`.
    // Stochastic rounding draws from a stream keyed by (format seed, name, iteration): fresh for
    // every tensor and step, reproducible for a given run.
    void quantize(const float* src, std::int64_t rows, std::int64_t cols,
                  const precision::TensorFormat& format, std::uint64_t iteration);
};

// A GEMM operand: a quantized matrix as stored, or a (rows, cols) matrix made from one that a
// block source produces while the GEMM packs it (a convolution's patches, nn/conv_lowering.hpp),
// with that matrix's name, format and exponents (which must then be one per tensor).
struct Dfp16Operand {
    Dfp16Operand(const Dfp16Matrix& m) : m(m), rows(m.rows()), cols(m.cols()) {}
    Dfp16Operand(const Dfp16Matrix& m, std::int64_t rows, std::int64_t cols,
                 kernels::BlockSource<std::int16_t> source)
        : m(m), rows(rows), cols(cols), source(source) {}
    const Dfp16Matrix& m;
    std::int64_t rows, cols;
    kernels::BlockSource<std::int16_t> source = {};
};

// c (M, N; ldc = N) = op(a) op(b), or += with `accumulate`, on gemm_s16s16f32 with the default
// GemmOptions (input shift, proven overflow rule). Exponents: the one per-tensor exponent, or one
// per row of op(a) / per column of op(b) when the operand's format has its axis there; other
// layouts (an exponent that varies along K, block formats) cannot be scaled after an INT32 sum
// and throw dfp::Error naming the layer, the pass ("fprop", "bprop", "wtgrad") and the tensor.
void dfp16_gemm(const Layer& layer, const char* pass, const Dfp16Operand& a, kernels::Op op_a,
                const Dfp16Operand& b, kernels::Op op_b, float* c, bool accumulate);

}  // namespace dfp::nn
