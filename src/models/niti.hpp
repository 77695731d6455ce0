// The networks of NITI (Wang et al., IEEE TPDS 2022; PAPERS.md section 2), which trains them
// integer-only in int8: no batch-norm and no biases. Built as nn::Nets so that FP32 and DFP16 train
// the very same networks; integer::from_net turns them into the int8 engine's layers.
//
// niti_lenet: the LeNet of Caffe's MNIST example (NITI's MNIST net is LeNet-style; its exact
// widths are not in PAPERS.md, so these are ours): conv 5x5 20 - ReLU - max-pool 2 - conv 5x5 50 -
// ReLU - max-pool 2 - fc 500 - ReLU - fc classes. 28x28 -> 24 -> 12 -> 8 -> 4.
// vgg_small: the CIFAR "VGG-small" without batch-norm: 2x conv 3x3 64, pool, 2x conv 3x3 128,
// pool, 2x conv 3x3 256, pool (pad 1, ReLU after every convolution; floor pools), fc classes.
// 32x32 -> 4x4, 28x28 -> 3x3.
#pragma once

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

nn::Net niti_lenet(const ImageInput& input);
nn::Net vgg_small(const ImageInput& input);

}  // namespace dfp::models
