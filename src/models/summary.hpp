// Shapes, parameters and multiply-accumulates of every layer of a Net, computed from the layers'
// geometry without running them: cheap even for ResNet-50 or VGG-16 at 224x224, where a forward
// pass would take seconds of both cores. A test checks the inferred shapes against a real forward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/format.hpp"
#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

// The shape of every node of `net` (node 0 is `src`) for an input of shape `src`. Throws
// dfp::Error naming the layer, as its forward would, when a shape does not fit it.
std::vector<Shape> infer_shapes(nn::Net& net, const Shape& src);

struct LayerStats {
    std::string name;
    std::string kind;
    bool fused_add = false;   // a residual join fused in (BatchNorm2d::fused_residual)
    bool fused_relu = false;  // Layer::fused_relu
    Shape dst;                // for one image
    std::int64_t params = 0;  // trainable values (weights, biases, batch-norm gamma and beta)
    // Multiply-accumulates of one image's forward pass: conv OH*OW*K*KH*KW*C, linear in*out, 0
    // elsewhere (the convention of the published figures, which leave out batch-norm, pooling
    // and additions).
    std::int64_t macs = 0;
};

// One row per layer, in the order of the Net, for one image of `in`.
std::vector<LayerStats> layer_stats(nn::Net& net, const ImageInput& in);

struct Totals {
    std::int64_t params = 0, macs = 0;
};
Totals totals(const std::vector<LayerStats>& layers);

}  // namespace dfp::models
