#include "models/alexnet.hpp"

#include <string>

#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/pool.hpp"

namespace dfp::models {
namespace {

constexpr std::int64_t kHiddenFeatures = 4096;
constexpr float kDropout = 0.5f;

// The ReLU fused into the convolution: its output is written once (Conv2dConfig::relu).
int conv_relu(nn::Net& net, int src, const std::string& id, std::int64_t in, std::int64_t out,
              std::int64_t kernel, std::int64_t stride, std::int64_t pad) {
    return net.add<nn::Conv2d>({src}, "conv" + id,
                               nn::Conv2dConfig{.in_channels = in,
                                                .out_channels = out,
                                                .kernel = kernel,
                                                .stride = stride,
                                                .pad = pad,
                                                .relu = true});
}

int max_pool(nn::Net& net, int src, const std::string& id) {
    return net.add<nn::MaxPool2d>({src}, "pool" + id, nn::Pool2dConfig{.kernel = 3, .stride = 2});
}

}  // namespace

nn::Net alexnet(const ImageInput& in) {
    const std::string model = "alexnet";
    check_input(in, model);
    nn::Net net;
    int x = is_small_image(in) ? conv_relu(net, nn::Net::kInput, "1", in.channels, 64, 3, 1, 1)
                               : conv_relu(net, nn::Net::kInput, "1", in.channels, 64, 11, 4, 2);
    x = max_pool(net, x, "1");
    x = conv_relu(net, x, "2", 64, 192, 5, 1, 2);
    x = max_pool(net, x, "2");
    x = conv_relu(net, x, "3", 192, 384, 3, 1, 1);
    x = conv_relu(net, x, "4", 384, 256, 3, 1, 1);
    x = conv_relu(net, x, "5", 256, 256, 3, 1, 1);
    x = max_pool(net, x, "5");
    const Shape features = output_shape(net, in, model);
    x = net.add<nn::Dropout>({x}, "drop6", kDropout);
    x = net.add<nn::Linear>({x}, "fc6",
                            nn::LinearConfig{.in_features = std::int64_t(shape_numel(features)),
                                             .out_features = kHiddenFeatures});
    x = net.add<nn::Relu>({x}, "relu6");
    x = net.add<nn::Dropout>({x}, "drop7", kDropout);
    x = net.add<nn::Linear>(
        {x}, "fc7",
        nn::LinearConfig{.in_features = kHiddenFeatures, .out_features = kHiddenFeatures});
    x = net.add<nn::Relu>({x}, "relu7");
    net.add<nn::Linear>(
        {x}, "fc8", nn::LinearConfig{.in_features = kHiddenFeatures, .out_features = in.classes});
    return net;
}

}  // namespace dfp::models
