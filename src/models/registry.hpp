// Every model by name, for the command line and the tests.
#pragma once

#include <string>
#include <vector>

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

// The names build() knows, in a fixed order: lenet5, resnet20, resnet32, resnet56, resnet18,
// resnet50, vgg16, vgg16_bn, alexnet, googlenet.
std::vector<std::string> names();
// Builds model `name` for `input`. Throws dfp::Error listing the names for an unknown one, or
// naming the model when the input does not fit it.
nn::Net build(const std::string& name, const ImageInput& input);

}  // namespace dfp::models
