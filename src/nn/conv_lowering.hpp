// Convolution as GEMM for the DFP16 passes of Conv2d: a 1x1, stride-1, unpadded convolution is a
// plain GEMM on the NHWC tensor viewed as (N*H*W, C); every other shape is lowered here to an
// explicit patch matrix ("im2col") of the already-quantized int16 activations, and BPROP's patch
// gradients are summed back onto the pixels ("col2im").
//
// This explicit lowering is a correct first step, not the final design: it materialises an
// (N*OH*OW, KH*KW*C) buffer, KH*KW times the activation, in memory. Issue 4 asks for implicit
// im2col inside the GEMM's packing (the packer reads patches straight from the NHWC tensor), which
// needs a packer hook in src/kernels; the GEMM's owner adds it, and these functions then remain
// as the scalar twins that test it.
#pragma once

#include <cstdint>

#include "format/dfp_tensor.hpp"
#include "nn/conv2d.hpp"

namespace dfp::nn {

// True when the convolution is a plain GEMM on the NHWC tensor: 1x1, stride 1, no padding.
bool is_direct_gemm(const ConvGeometry& g);

// col (N*OH*OW, KH*KW*C) = the patches of src (N*H*W, C, one exponent per tensor): row
// (n, oh, ow), column (r, s, c) holds src (n, oh*stride - pad + r, ow*stride - pad + s, c), or
// mantissa 0 in the padding (exact: zero in any exponent). col takes src's format and exponent.
// Column order (r, s, c) matches the weights' (K, KH, KW, C).
void im2col(const Dfp16Tensor& src, const ConvGeometry& g, Dfp16Tensor& col);

// diff_src (N, H, W, C) += every patch gradient in dcol (N*OH*OW, KH*KW*C) added onto the pixel
// it was read from; the padding's entries are dropped. The adjoint of im2col.
void col2im_add(float* diff_src, const float* dcol, const ConvGeometry& g);

}  // namespace dfp::nn
