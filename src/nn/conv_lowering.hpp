// Convolution as GEMM for the DFP16 and DFP8 passes of Conv2d. A 1x1, stride-1, unpadded
// convolution is a plain GEMM on the NHWC tensor viewed as (N*H*W, C). Every other shape
// multiplies the patch matrix ("im2col") of the int16 (int8) activations, which is never stored:
// PatchSource hands the GEMM's packer the blocks it packs (a few hundred KiB, in L2) straight from
// the NHWC tensor, so the KH*KW-times-larger matrix never goes through memory.
//
// BPROP is itself made of stride-1 convolutions of diff_dst (bprop_phase). At stride 1 it is one:
// diff_dst padded by KH-1-pad, the weights flipped in space with K and C swapped, adding straight
// into diff_src. At stride s each input pixel (ih, iw) is reached only by the kernel taps
// r = ih + pad and t = iw + pad (mod s), so the pixels of one phase (ih % s, iw % s) take a
// stride-1 convolution with those taps alone: s^2 convolutions that together multiply no more than
// the strided one, each into its own dense block, and scatter_phases interleaves the blocks onto
// the pixels. (Multiplying into the KH*KW*C-wide patch gradients instead and summing them back with
// col2im_add wrote KH*KW/s^2 times diff_src's size; that remains for exponents that vary along
// a patch row, which cannot be lowered.)
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

// What a patch matrix reads: a tensor (N, H, W, C) through a KH x KW window whose corner, for patch
// row (n, oh, ow), is at (oh * stride - pad_h, ow * stride - pad_w). A convolution's patches
// (patch_geometry), or a BPROP phase's (bprop_phase): stride 1, any window, padding that may be
// larger on one side than the other (the window's far side is bounded by H and W alone).
struct PatchGeometry {
    std::int64_t n, h, w, c;
    std::int64_t kh, kw, stride, pad_h, pad_w;
    std::int64_t oh, ow;
};
PatchGeometry patch_geometry(const ConvGeometry& g);

// The patch matrix (N*OH*OW, KH*KW*C) of an NHWC int16 or int8 tensor src (N, H, W, C): row
// (n, oh, ow), column (r, s, c) holds src (n, oh*stride - pad_h + r, ow*stride - pad_w + s, c), or
// 0 in the padding (exact: zero in any exponent). Column order (r, s, c) matches the weights' (K,
// KH, KW, C). The mantissas keep src's exponent, so src needs one exponent per tensor.
template <class M>
struct PatchSource {
    const M* src;
    PatchGeometry g;

    std::int64_t rows() const { return g.n * g.oh * g.ow; }
    std::int64_t cols() const { return g.kh * g.kw * g.c; }
    // kernels::BlockSource::Fill: rows [row0, row0 + rows) x columns [col0, col0 + cols) of the
    // patch matrix into dst (leading dimension ld). `self` is the PatchSource. Thread-safe.
    static void fill(const void* self, std::int64_t row0, std::int64_t rows, std::int64_t col0,
                     std::int64_t cols, M* dst, std::int64_t ld);
    // kernels::BlockSource::Region: the input pixels from the top row read by row0 to the bottom
    // row read by row0 + rows - 1, whole rows of the image (an upper bound of what fill reads).
    static std::pair<const char*, std::int64_t> region(const void* self, std::int64_t row0,
                                                       std::int64_t rows);
    kernels::BlockSource<M> block_source() const { return {&fill, this, &region}; }
};

// The explicit patch matrix: col takes src's format and exponent (the scalar twin of PatchSource).
void im2col(const Dfp16Tensor& src, const PatchGeometry& g, Dfp16Tensor& col);
// The FP32 patch matrix of an FP32 NHWC tensor: block-scaled (MXINT8) operands take their
// exponents along the patch matrix's K, so they are quantized from it.
void im2col(const float* src, const PatchGeometry& g, float* col);

// The BPROP convolution of phase (ph, pw), 0 <= ph, pw < stride: the input pixels (n, ph + stride
// i, pw + stride j) as patch rows (n, i, j), over diff_dst (N, OH, OW, K). Its kernel row r' is
// the convolution's row r0 + stride (KH' - 1 - r'), KH' = patches.kh, and likewise its columns
// from s0. KH' or KW' is 0 where no tap reaches the phase (a kernel narrower than the stride), OH'
// or OW' where the image has no such pixels: then the phase is empty.
struct BpropPhase {
    std::int64_t ph, pw;
    std::int64_t r0, s0;    // the phase's first kernel row and column in the convolution's kernel
    PatchGeometry patches;  // over diff_dst: patches.c = K
    bool empty() const { return patches.kh * patches.kw * patches.oh * patches.ow == 0; }
};
BpropPhase bprop_phase(const ConvGeometry& g, std::int64_t ph, std::int64_t pw);
// wei (K, KH, KW, C) -> the phase's B operand (KH' KW' K, C): row (r', s', k) holds wei (k, r0 +
// stride (KH' - 1 - r'), s0 + stride (KW' - 1 - s'), :). At stride 1: the weights flipped in
// space. Same format and exponents (one per tensor).
template <class M>
void phase_weights(const DfpTensor<M>& wei, const ConvGeometry& g, const BpropPhase& p,
                   DfpTensor<M>& out);
// diff_src (N, H, W, C) = (or += with `add`) the phases' results, stored one after the other in
// phase order (ph, pw), each as its (N*OH'*OW', C) patch rows: phases that no tap reaches add 0.
void scatter_phases(float* diff_src, const float* phases, const ConvGeometry& g, bool add);

// diff_src (N, H, W, C) += every patch gradient in dcol (N*OH*OW, KH*KW*C) added onto the pixel
// it was read from; the padding's entries are dropped. The adjoint of im2col.
void col2im_add(float* diff_src, const float* dcol, const ConvGeometry& g);

}  // namespace dfp::nn
