#include "models/lenet.hpp"

#include <string>

#include "base/error.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/pool.hpp"

namespace dfp::models {

nn::Net lenet5(const ImageInput& in) {
    // Spatial size after conv1 (5x5 pad 2: unchanged), pool, conv2 (5x5: -4), pool.
    const auto after = [](std::int64_t s) { return ((s / 2) - 4) / 2; };
    if (in.height < 12 || in.width < 12 || in.channels < 1 || in.classes < 2)
        throw Error(
            "lenet5: needs inputs of at least 12x12 with >= 1 channel and >= 2 classes, got " +
            std::to_string(in.height) + "x" + std::to_string(in.width) + "x" +
            std::to_string(in.channels) + " with " + std::to_string(in.classes) + " classes");
    nn::Net net;
    int x = net.add<nn::Conv2d>(
        {nn::Net::kInput}, "conv1",
        nn::Conv2dConfig{.in_channels = in.channels, .out_channels = 6, .kernel = 5, .pad = 2});
    x = net.add<nn::Relu>({x}, "relu1");
    x = net.add<nn::MaxPool2d>({x}, "pool1", nn::Pool2dConfig{});
    x = net.add<nn::Conv2d>({x}, "conv2",
                            nn::Conv2dConfig{.in_channels = 6, .out_channels = 16, .kernel = 5});
    x = net.add<nn::Relu>({x}, "relu2");
    x = net.add<nn::MaxPool2d>({x}, "pool2", nn::Pool2dConfig{});
    x = net.add<nn::Linear>({x}, "fc1",
                            nn::LinearConfig{.in_features = 16 * after(in.height) * after(in.width),
                                             .out_features = 120});
    x = net.add<nn::Relu>({x}, "relu3");
    x = net.add<nn::Linear>({x}, "fc2", nn::LinearConfig{.in_features = 120, .out_features = 84});
    x = net.add<nn::Relu>({x}, "relu4");
    net.add<nn::Linear>({x}, "fc3",
                        nn::LinearConfig{.in_features = 84, .out_features = in.classes});
    return net;
}

}  // namespace dfp::models
