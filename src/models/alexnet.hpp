// AlexNet (Krizhevsky et al., NIPS 2012) as torchvision builds it: one tower (after Krizhevsky's
// "One weird trick", 2014), convolutions 64@11x11/4, 192@5x5, 384, 256, 256@3x3, each
// with ReLU, 3x3 stride-2 max-pools after conv1, conv2 and conv5, no LRN, then dropout 0.5 - fc6
// 4096 - ReLU - dropout - fc7 4096 - ReLU - fc8. 61,100,840 parameters and 0.71 G multiply-adds at
// 224x224 with 1000 classes. (The original two-tower network with LRN has 60.97M.)
//
// As in vgg.hpp, fc6 takes the last feature map as it is (6x6 at 224x224, where torchvision's
// adaptive pool to 6x6 does nothing). Images smaller than kSmallImageSide get the CIFAR stem
// (image_input.hpp): conv1 is 3x3 stride 1, so 32x32 ends at 3x3 and 28x28 at 2x2.
#pragma once

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

nn::Net alexnet(const ImageInput& input);

}  // namespace dfp::models
