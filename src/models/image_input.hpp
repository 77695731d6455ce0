// What every model is built for: the size of its input images and its number of classes, and the
// checks shared by the model builders.
#pragma once

#include <cstdint>
#include <string>

#include "format/format.hpp"
#include "nn/net.hpp"

namespace dfp::models {

struct ImageInput {
    std::int64_t height = 28, width = 28, channels = 1;
    std::int64_t classes = 10;
};

// Images smaller than this on either side get the CIFAR-style stem of ImageNet models: their 7x7
// or 11x11 strided first convolution becomes a 3x3 stride-1 one and the stem's max-pools go, as
// CIFAR ports of those models do. 64 keeps 32x32 (CIFAR) and 28x28 (MNIST) on the small stem and
// leaves 64x64 (Tiny ImageNet) and up on the original one, which reduces 64 to 16 before the
// first stage.
inline constexpr std::int64_t kSmallImageSide = 64;
inline bool is_small_image(const ImageInput& in) {
    return in.height < kSmallImageSide || in.width < kSmallImageSide;
}

// {batch, height, width, channels}: the NHWC shape of a batch of `in`.
Shape image_shape(const ImageInput& in, std::int64_t batch);
// "32x32x3 with 10 classes", for messages.
std::string input_string(const ImageInput& in);
// Throws dfp::Error naming `model` unless the input has sides and channels >= 1 and >= 2 classes.
void check_input(const ImageInput& in, const std::string& model);
// The shape {1, ...} of the last node of `net` (built so far) for one image of `in`, inferred
// without running the layers. Throws dfp::Error naming `model`, the input and the layer that does
// not fit, which is how a model reports an input too small for it.
Shape output_shape(nn::Net& net, const ImageInput& in, const std::string& model);

}  // namespace dfp::models
