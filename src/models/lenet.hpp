// LeNet-5 (LeCun et al. 1998) in its common modern form: ReLU instead of tanh, max-pooling
// instead of trainable subsampling, full connections between conv1 and conv2.
//   conv1 6@5x5 pad 2 - relu - maxpool 2 - conv2 16@5x5 - relu - maxpool 2
//   - fc1 120 - relu - fc2 84 - relu - fc3 classes
// The padding of conv1 keeps 28x28 inputs (MNIST) at 28x28, as 32x32 inputs were in the paper.
#pragma once

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::models {

// Throws dfp::Error when the input is too small for the two 5x5 convolutions and poolings.
nn::Net lenet5(const ImageInput& input);

}  // namespace dfp::models
