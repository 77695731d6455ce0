// VGG-16 (Simonyan and Zisserman, ICLR 2015, configuration D): thirteen 3x3 convolutions in five
// blocks (64, 128, 256, 512, 512 channels), each block ending in a 2x2 stride-2 max-pool, then
// fc6 - fc7 (4096, ReLU, dropout 0.5) - fc8. Layer for layer torchvision's vgg16 (138,357,544
// parameters at 224x224 with 1000 classes); with batch_norm, its vgg16_bn (a batch-norm after
// every convolution, the convolutions keeping their bias).
//
// torchvision puts an adaptive average pool to 7x7 before fc6; here fc6 takes the last feature map
// as it is (7x7 at 224x224, the same network), so smaller images get a smaller fc6 instead of a
// map blown up to 7x7 (1x1 at 32x32: fc6 is 512 -> 4096). The pools round up (ceil mode), which
// changes nothing for sides divisible by 32 and lets 28x28 reach 1x1 instead of vanishing; the
// smallest side is 17.
#pragma once

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

nn::Net vgg16(const ImageInput& input, bool batch_norm);

}  // namespace dfp::models
