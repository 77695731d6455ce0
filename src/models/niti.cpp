#include "models/niti.hpp"

#include <string>

#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/pool.hpp"

namespace dfp::models {
namespace {

// conv (no bias) - ReLU; returns the ReLU's node.
int conv_relu(nn::Net& net, int src, const std::string& name, std::int64_t in, std::int64_t out,
              std::int64_t kernel, std::int64_t pad) {
    const int x = net.add<nn::Conv2d>(
        {src}, name,
        nn::Conv2dConfig{
            .in_channels = in, .out_channels = out, .kernel = kernel, .pad = pad, .bias = false});
    return net.add<nn::Relu>({x}, "relu" + name.substr(4));
}

// The classifier: a bias-free fc from the flattened last feature map.
void classifier(nn::Net& net, int src, const std::string& name, const ImageInput& in,
                const std::string& model, std::int64_t features) {
    const Shape s = output_shape(net, in, model);
    net.add<nn::Linear>({src}, name,
                        nn::LinearConfig{.in_features = static_cast<std::int64_t>(shape_numel(s)),
                                         .out_features = features,
                                         .bias = false});
}

}  // namespace

nn::Net niti_lenet(const ImageInput& in) {
    constexpr std::int64_t kConv1 = 20, kConv2 = 50, kHidden = 500, kKernel = 5;
    check_input(in, "niti_lenet");
    nn::Net net;
    int x = conv_relu(net, nn::Net::kInput, "conv1", in.channels, kConv1, kKernel, 0);
    x = net.add<nn::MaxPool2d>({x}, "pool1", nn::Pool2dConfig{});
    x = conv_relu(net, x, "conv2", kConv1, kConv2, kKernel, 0);
    x = net.add<nn::MaxPool2d>({x}, "pool2", nn::Pool2dConfig{});
    classifier(net, x, "fc1", in, "niti_lenet", kHidden);
    x = net.add<nn::Relu>({net.output()}, "relu3");
    classifier(net, x, "fc2", in, "niti_lenet", in.classes);
    return net;
}

nn::Net vgg_small(const ImageInput& in) {
    check_input(in, "vgg_small");
    nn::Net net;
    int x = nn::Net::kInput;
    std::int64_t channels = in.channels;
    int conv = 0;
    for (const std::int64_t width : {64, 128, 256}) {
        for (int i = 0; i < 2; ++i, channels = width)
            x = conv_relu(net, x, "conv" + std::to_string(++conv), channels, width, 3, 1);
        x = net.add<nn::MaxPool2d>({x}, "pool" + std::to_string(conv / 2), nn::Pool2dConfig{});
    }
    classifier(net, x, "fc", in, "vgg_small", in.classes);
    return net;
}

}  // namespace dfp::models
