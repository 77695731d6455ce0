// The integer passes of Conv2d and Linear (FPROP, BPROP, WTGRAD): DFP16 on the int16 GEMM and DFP8
// on the int8 one. Each FP32 operand is quantized into a buffer the layer keeps (so backward
// reuses what forward quantized), then kernels::gemm_s16s16f32 / gemm_s8s8f32 multiplies the
// mantissas into INT32 chains and scales them by 2^(eA + eB) into FP32 (PAPERS.md section 1,
// "Primitives"; section 3 for the block-scaled DFP8 of MXINT8).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "format/dfp_tensor.hpp"
#include "format/quantize.hpp"
#include "kernels/gemm.hpp"
#include "nn/layer.hpp"
#include "precision/policy.hpp"

namespace dfp::nn {

// An FP32 tensor quantized to DFP (int16 mantissas for DFP16, int8 for DFP8) as the row-major
// matrix (rows, cols) that the GEMM reads: a Linear src (N, I), an NHWC activation (N*H*W, C),
// conv weights (K, KH*KW*C). The format's granularity applies to that matrix: one exponent per
// tensor, per row (axis 0) or column (axis 1), or per block along the rows (block).
template <class M>
struct QuantMatrix {
    QuantMatrix(std::string name) : name(std::move(name)) {}
    std::string name;  // "<layer>.<role>", e.g. "conv2.src": names the tensor in errors
    DfpTensor<M> q;

    std::int64_t rows() const { return static_cast<std::int64_t>(q.shape.at(0)); }
    std::int64_t cols() const { return static_cast<std::int64_t>(q.shape.at(1)); }
    // Quantizes src (rows, cols), reusing the buffers; NaN or Inf throws dfp::Error naming `name`.
    // Stochastic rounding draws from a stream keyed by (format seed, name, iteration): fresh for
    // every tensor and step, reproducible for a given run. With `keep` (rows, cols), src counts
    // only where keep > 0 (quantize_into): a gradient through a fused ReLU whose output is keep.
    void quantize(const float* src, std::int64_t rows, std::int64_t cols,
                  const precision::TensorFormat& format, std::uint64_t iteration,
                  const float* keep = nullptr);
    // Quantizes the transpose (cols, rows) of src (rows, cols): a block-scaled operand whose
    // reduction runs down src's columns (nn/conv2d.cpp, nn/linear.cpp).
    void quantize_transposed(const float* src, std::int64_t rows, std::int64_t cols,
                             const precision::TensorFormat& format, std::uint64_t iteration);
    std::vector<float> transposed;  // quantize_transposed's scratch
    // Quantizing src (rows, cols) as the layer that writes it goes (Layer::input_quantization,
    // Layer::output_gradient_quantization):
    // emplaces into `parts` a quantizer that fills q part by part with last step's exponent, or
    // leaves it empty when there is none to guess (no quantize yet, not one exponent per tensor).
    void begin_parts(std::optional<PartwiseQuantizer<M>>& parts, std::int64_t rows,
                     std::int64_t cols, const precision::TensorFormat& format,
                     std::uint64_t iteration);
    // After every part of src: whether q now holds src; take_produced() then finds it.
    bool end_parts(PartwiseQuantizer<M>& parts, const float* src,
                   const precision::TensorFormat& format, std::uint64_t iteration);
    // Whether the layer that wrote src filled q with it for this pass (end_parts); true once only,
    // as a later pass may bring other values in the same buffer at the same iteration (eval).
    bool take_produced(const float* src, std::int64_t rows, std::int64_t cols,
                       const precision::TensorFormat& format, std::uint64_t iteration);
    // Whether q is what quantize() made of src (rows, cols) in `format` at `iteration`, unmasked:
    // a layer reading the same tensor in the same step may then use q rather than quantize it
    // again (Conv2d's input siblings).
    bool holds(const float* src, std::int64_t rows, std::int64_t cols,
               const precision::TensorFormat& format, std::uint64_t iteration) const;
    // What the last quantize() read (null after a masked or failed one), in what and when.
    const float* source = nullptr;
    precision::TensorFormat source_format;
    std::uint64_t source_iteration = 0;
    // end_parts filled q; take_produced clears it, and so does the writer on each of its passes
    bool produced = false;

  private:
    // The quantizer's options for `format` at `iteration`, with last step's exponent as the guess.
    QuantizeOptions options(const precision::TensorFormat& format, std::uint64_t iteration) const;
    // Records that q is what quantize() makes of src in `format` at `iteration` (holds()).
    void mark_source(const float* src, const precision::TensorFormat& format,
                     std::uint64_t iteration);
};
using Dfp16Matrix = QuantMatrix<std::int16_t>;
using Dfp8Matrix = QuantMatrix<std::int8_t>;

// A GEMM operand: a quantized matrix as stored, or a (rows, cols) matrix made from one that a
// block source produces while the GEMM packs it (a convolution's patches, nn/conv_lowering.hpp),
// with that matrix's name, format and exponents (which must then be one per tensor).
template <class M>
struct DfpOperand {
    DfpOperand(const QuantMatrix<M>& m) : m(m), rows(m.rows()), cols(m.cols()) {}
    DfpOperand(const QuantMatrix<M>& m, std::int64_t rows, std::int64_t cols,
               kernels::BlockSource<M> source)
        : m(m), rows(rows), cols(cols), source(source) {}
    const QuantMatrix<M>& m;
    std::int64_t rows, cols;
    kernels::BlockSource<M> source = {};
};

// c (M, N; ldc = N) = op(a) op(b), or += with `accumulate`, on gemm_s16s16f32 (int16) or
// gemm_s8s8f32 (int8) with the default GemmOptions. Exponents: the one per-tensor exponent, or one
// per row of op(a) / per column of op(b) when the operand's format has its axis there, or (int8)
// blocks along the rows of a stored matrix that is K-contiguous in this product (A as is, B
// transposed): MXINT8's block scaling along the reduction. Other layouts cannot be scaled after
// an INT32 sum and throw dfp::Error naming the layer, the pass ("fprop", "bprop", "wtgrad") and
// the tensor.
// `bias` (N values, or null) and `relu`: c = max(0, ... + bias), done by the GEMM as it writes c
// (a layer's bias and fused ReLU). `rows_done`: kernels::GemmOptions::rows_done.
template <class M>
void dfp_gemm(const Layer& layer, const char* pass, const DfpOperand<M>& a, kernels::Op op_a,
              const DfpOperand<M>& b, kernels::Op op_b, float* c, bool accumulate,
              const float* bias = nullptr, bool relu = false,
              std::function<void(std::int64_t, std::int64_t)> rows_done = {});

// A DFP8 layer with a block format for any of its tensors (MXINT8): each GEMM pass then
// quantizes its operands in blocks along its own reduction (Conv2d, Linear).
bool block_scaled(const precision::LayerPrecision& p);

}  // namespace dfp::nn
