// Residual networks (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).
//
// CIFAR-style ResNet-(6n+2) (the paper's section 4.2): a 3x3 convolution to 16 channels, then
// three stages of n basic blocks (two 3x3 convolutions) at 16, 32 and 64 channels, the first
// block of stages 2 and 3 at stride 2, global average pooling, one linear layer. Shortcuts are
// option B: identity, except a 1x1 stride-2 convolution with batch-norm where the shape changes
// (2 of them). Option A (zero-padded identity) has no parameters, so the paper's counts (0.27M,
// 0.46M, 0.85M) are 2,752 lower. These networks keep their stride-1 stem at every input size.
//
// ImageNet-style ResNet-18 (basic blocks, 2-2-2-2) and ResNet-50 (bottleneck blocks 1x1-3x3-1x1
// with 4x expansion, 3-4-6-3): 7x7 stride-2 convolution and 3x3 stride-2 max-pool, four stages
// at 64, 128, 256 and 512 (x4 for ResNet-50) channels, global average pooling, one linear layer.
// Shortcuts are projections (1x1 convolution and batch-norm) where the shape changes. ResNet-50 is
// torchvision's "v1.5": the stride-2 of a bottleneck is on its 3x3 convolution, not on its first
// 1x1 as in the paper (same parameters; more multiply-adds at 224x224, about 4.1 G against the
// paper's 3.8 G, and better accuracy). Images smaller than kSmallImageSide get the CIFAR stem (see
// image_input.hpp).
//
// Convolutions have no bias (the following batch-norm's beta is one), as in the paper.
#pragma once

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

// depth = 6n + 2 >= 8: 20, 32, 56 (and 44, 110, ...).
nn::Net resnet_cifar(int depth, const ImageInput& input);
nn::Net resnet18(const ImageInput& input);
nn::Net resnet50(const ImageInput& input);

}  // namespace dfp::models
