// Every model by name, for the command line and the tests.
#pragma once

#include <string>
#include <vector>

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

// The names build() knows, in a fixed order: lenet5, resnet20, resnet32, resnet56, resnet18,
// resnet50, vgg16, vgg16_bn, alexnet, googlenet, niti_lenet, vgg_small.
std::vector<std::string> names();
// The models that also train integer-only (--precision int8, integer/): niti_lenet, vgg_small
// (chains of bias-free conv2d and linear, ReLU and max-pool; integer::from_net builds them).
std::vector<std::string> integer_names();
// Throws dfp::Error "unknown model 'NAME' (available: ...)" when build() does not know `name`.
void check_name(const std::string& name);
// Builds model `name` for `input`. Throws dfp::Error listing the names for an unknown one, or
// naming the model when the input does not fit it.
nn::Net build(const std::string& name, const ImageInput& input);
// The input model `name` is usually trained on, for commands that need no dataset (bench train):
// 28x28x1 with 10 classes for lenet5 and niti_lenet (Fashion-MNIST), 32x32x3 with 10 for the
// CIFAR ResNets (resnet20/32/56) and vgg_small, 224x224x3 with 1000 (ImageNet) for the others. Throws dfp::Error listing the
// names for an unknown one.
ImageInput natural_input(const std::string& name);

}  // namespace dfp::models
