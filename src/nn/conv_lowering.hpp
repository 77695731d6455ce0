// Convolution as GEMM for the DFP16 and DFP8 passes of Conv2d. A 1x1, stride-1, unpadded
// convolution is a plain GEMM on the NHWC tensor viewed as (N*H*W, C). Every other shape
// multiplies the patch matrix ("im2col") of the int16 (int8) activations, which is never stored:
// PatchSource hands the GEMM's packer the blocks it packs (a few hundred KiB, in L2) straight from
// the NHWC tensor, so the KH*KW-times-larger matrix never goes through memory.
//
// BPROP of a stride-1 convolution is itself a stride-1 convolution: of diff_dst, padded by
// KH-1-pad, with the weights flipped in space and their K and C swapped (flip_weights), so it runs
// on the same implicit lowering and adds straight into diff_src. Strided convolutions (each
// input pixel reached by a varying number of taps) multiply into an FP32 patch-gradient buffer
// that col2im_add sums back onto the pixels.
//
// im2col is the explicit lowering: the scalar twin of PatchSource, used by the tests.
#pragma once

#include <cstdint>
#include <utility>

#include "format/dfp_tensor.hpp"
#include "kernels/gemm.hpp"
#include "nn/conv2d.hpp"

namespace dfp::nn {

// True when the convolution is a plain GEMM on the NHWC tensor: 1x1, stride 1, no padding.
bool is_direct_gemm(const ConvGeometry& g);
// True for a strided 1x1 unpadded convolution: it reads one pixel in stride^2, so Conv2d
// subsamples its FP32 src to (N*OH*OW, C) (im2col) before quantizing: the GEMM then reads that
// matrix as is, a quarter of the input is quantized at stride 2, and no pass fills patches.
bool subsamples_src(const ConvGeometry& g);

// The patch matrix (N*OH*OW, KH*KW*C) of an NHWC int16 or int8 tensor src (N, H, W, C): row
// (n, oh, ow), column (r, s, c) holds src (n, oh*stride - pad + r, ow*stride - pad + s, c), or 0 in
// the padding (exact: zero in any exponent). Column order (r, s, c) matches the weights' (K, KH,
// KW, C). The mantissas keep src's exponent, so src needs one exponent per tensor.
template <class M>
struct PatchSource {
    const M* src;
    ConvGeometry g;

    std::int64_t rows() const { return g.n * g.oh * g.ow; }
    std::int64_t cols() const { return g.kernel * g.kernel * g.c; }
    // kernels::BlockSource::Fill: rows [row0, row0 + rows) x columns [col0, col0 + cols) of the
    // patch matrix into dst (leading dimension cols). `self` is the PatchSource. Thread-safe.
    static void fill(const void* self, std::int64_t row0, std::int64_t rows, std::int64_t col0,
                     std::int64_t cols, M* dst);
    // kernels::BlockSource::Region: the input pixels from the top row read by row0 to the bottom
    // row read by row0 + rows - 1, whole rows of the image (an upper bound of what fill reads).
    static std::pair<const char*, std::int64_t> region(const void* self, std::int64_t row0,
                                                       std::int64_t rows);
    kernels::BlockSource<M> block_source() const { return {&fill, this, &region}; }
};

// The explicit patch matrix: col takes src's format and exponent (the scalar twin of PatchSource).
void im2col(const Dfp16Tensor& src, const ConvGeometry& g, Dfp16Tensor& col);
// The FP32 patch matrix of an FP32 NHWC tensor: block-scaled (MXINT8) operands take their
// exponents along the patch matrix's K, so they are quantized from it.
void im2col(const float* src, const ConvGeometry& g, float* col);

// True when BPROP runs as the stride-1 convolution of diff_dst (bprop_geometry, flip_weights).
bool bprop_is_convolution(const ConvGeometry& g);
// That convolution: src diff_dst (N, OH, OW, K), K -> C channels, padding KH-1-pad, output
// (N, H, W, C).
ConvGeometry bprop_geometry(const ConvGeometry& g);
// wei (K, KH, KW, C) -> flipped (KH*KW*K, C): row (r, s, k) holds wei (k, KH-1-r, KW-1-s, :), the
// B operand of the BPROP convolution. Same format and exponents (one per tensor).
template <class M>
void flip_weights(const DfpTensor<M>& wei, const ConvGeometry& g, DfpTensor<M>& flipped);

// diff_src (N, H, W, C) += every patch gradient in dcol (N*OH*OW, KH*KW*C) added onto the pixel
// it was read from; the padding's entries are dropped. The adjoint of im2col.
void col2im_add(float* diff_src, const float* dcol, const ConvGeometry& g);

}  // namespace dfp::nn
