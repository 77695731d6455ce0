#include "models/vgg.hpp"

#include <string>

#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/norm.hpp"
#include "nn/pool.hpp"

namespace dfp::models {
namespace {

struct VggBlock {
    std::int64_t channels;
    int convs;
};
constexpr VggBlock kVgg16Blocks[] = {{64, 2}, {128, 2}, {256, 3}, {512, 3}, {512, 3}};
constexpr std::int64_t kHiddenFeatures = 4096;
constexpr float kDropout = 0.5f;

}  // namespace

nn::Net vgg16(const ImageInput& in, bool batch_norm) {
    const std::string model = batch_norm ? "vgg16_bn" : "vgg16";
    check_input(in, model);
    nn::Net net;
    int x = nn::Net::kInput;
    std::int64_t channels = in.channels;
    for (int b = 0; b < 5; ++b) {
        for (int i = 0; i < kVgg16Blocks[b].convs; ++i) {
            const std::string id = std::to_string(b + 1) + "_" + std::to_string(i + 1);
            // The ReLU fused into the batch-norm, or without it into the convolution: one pass
            // over the activation fewer.
            x = net.add<nn::Conv2d>({x}, "conv" + id,
                                    nn::Conv2dConfig{.in_channels = channels,
                                                     .out_channels = kVgg16Blocks[b].channels,
                                                     .kernel = 3,
                                                     .pad = 1,
                                                     .relu = !batch_norm});
            channels = kVgg16Blocks[b].channels;
            if (batch_norm)
                x = net.add<nn::BatchNorm2d>(
                    {x}, "bn" + id, nn::BatchNormConfig{.channels = channels, .relu = true});
        }
        x = net.add<nn::MaxPool2d>({x}, "pool" + std::to_string(b + 1),
                                   nn::Pool2dConfig{.ceil_mode = true});
    }
    const Shape features = output_shape(net, in, model);
    x = net.add<nn::Linear>({x}, "fc6",
                            nn::LinearConfig{.in_features = std::int64_t(shape_numel(features)),
                                             .out_features = kHiddenFeatures});
    x = net.add<nn::Relu>({x}, "relu6");
    x = net.add<nn::Dropout>({x}, "drop6", kDropout);
    x = net.add<nn::Linear>(
        {x}, "fc7",
        nn::LinearConfig{.in_features = kHiddenFeatures, .out_features = kHiddenFeatures});
    x = net.add<nn::Relu>({x}, "relu7");
    x = net.add<nn::Dropout>({x}, "drop7", kDropout);
    net.add<nn::Linear>(
        {x}, "fc8", nn::LinearConfig{.in_features = kHiddenFeatures, .out_features = in.classes});
    return net;
}

}  // namespace dfp::models
