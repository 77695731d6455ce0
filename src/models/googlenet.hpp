// GoogLeNet, i.e. Inception v1 (Szegedy et al., CVPR 2015), as the authors' Caffe model
// (bvlc_googlenet) has it, without the two auxiliary classifiers (they only help training):
//   conv1 64@7x7/2 - max-pool 3x3/2 - LRN - conv2_reduce 64@1x1 - conv2 192@3x3 - LRN - max-pool
//   - inception 3a, 3b - max-pool - 4a..4e - max-pool - 5a, 5b - global average pool
//   - dropout 0.4 - fc
// Every convolution has a bias and a ReLU; the max-pools are 3x3 stride 2 rounding up (Caffe);
// the LRNs have size 5, alpha 1e-4, beta 0.75. The inception branches are 1x1 | 1x1 - 3x3 |
// 1x1 - 5x5 | 3x3 max-pool stride 1 - 1x1, concatenated. 6,998,552 parameters and about 1.6 G
// multiply-adds at 224x224 with 1000 classes (the paper's table 1 rounds to 6.8M and 1.5 G).
// torchvision's googlenet differs (batch-norm, 3x3 in place of 5x5: 6.6M).
//
// Images smaller than kSmallImageSide get the CIFAR stem (image_input.hpp): conv1 is 3x3 stride 1
// and the two stem max-pools go, so 32x32 reaches the inception stages at 32, 16 and 8.
#pragma once

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

nn::Net googlenet(const ImageInput& input);

}  // namespace dfp::models
