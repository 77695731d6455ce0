// The precision policy: for every convolution and fully-connected layer, whether its three
// passes (FPROP, BPROP, WTGRAD) run in FP32 (oneDNN), DFP16 (the int16 GEMM) or DFP8 (the int8
// GEMM), and how each class of its tensors (weights, activations, gradients) becomes DFP.
// Batch-norm, ReLU, pooling and the loss stay FP32 in every policy, as in the paper.
//
// Spec (the command line's --precision): comma-separated items, applied in order:
//   fp32 | dfp16 | dfp8               the default for every layer (must come first); dfp8 is the
//                                     DFP16 scheme with 8-bit mantissas (bits=8, the first and
//                                     last layer FP32)
//   SELECTOR=fp32|dfp16|dfp8          override for the layers SELECTOR names; the last match wins
//   CLASS.KEY=VALUE                   a setting for weights, activations, gradients or all:
//       bits=2..16  granularity=tensor|axis|block  axis=N  block=N  shift=N  rounding=NAME
// A dfp8 layer quantizes to min(bits, 8) bits. granularity=block on a dfp8 layer is MXINT8:
// blocks of `block` (default 32) along the reduction dimension of each GEMM pass.
// SELECTOR: a layer name, a pattern with '*' (e.g. "res2*"), or first / last (the first or last
// conv/linear layer of the network). Example:
// "dfp16,first=fp32,last=fp32,gradients.rounding=stochastic".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "format/format.hpp"

namespace dfp::precision {

enum class Compute { fp32, dfp16, dfp8 };

// DFP16's default headroom shift s (E_s = E_fmax - 14 + s): 14-bit magnitudes. The integer GEMM
// proves each INT32 chain safe from the data (kernels/gemm.hpp), so s is not needed for safety;
// it buys length: one bit off both operands makes every proven chain 4x longer. At s = 0 most
// multiply-adds of AlexNet and ResNet-50 ran in chains of <= 16 pairs, where the micro-kernel
// loses a third of its speed to the INT32 -> FP32 spills. The paper's code uses s = 2.
inline constexpr int kDfp16Shift = 1;

const char* compute_name(Compute c);

// How one class of tensors becomes DFP: the format (bits, exponent blocks) and the rounding.
struct TensorFormat {
    Format format;
    QuantizeOptions quantize;
};

struct LayerPrecision {
    Compute compute = Compute::fp32;
    TensorFormat weights, activations, gradients;
};

class Policy {
  public:
    // Everything FP32.
    static Policy fp32();
    // The paper's mixed precision (Das et al. 2018): DFP16 with one exponent per tensor and
    // round-to-nearest-even for weights, activations and gradients, the first layer (which sees
    // FP32 image data) and the last (the classifier before the softmax loss) in FP32, headroom
    // shift kDfp16Shift.
    static Policy dfp16();
    // dfp16() with 8-bit mantissas on the int8 GEMM.
    static Policy dfp8();
    // Parses a spec (above); throws dfp::Error naming the item at fault.
    static Policy parse(std::string_view spec);

    // The precision of the layer `name`, which is conv/linear layer `index` of `count`.
    LayerPrecision for_layer(std::string_view name, std::size_t index, std::size_t count) const;
    std::string describe() const;

  private:
    struct Override {
        std::string selector;
        Compute compute;
    };
    LayerPrecision base_;
    std::vector<Override> overrides_;
};

// Does `name` match `pattern` ('*' matches any run of characters, everything else itself)?
bool glob_match(std::string_view pattern, std::string_view name);

}  // namespace dfp::precision
