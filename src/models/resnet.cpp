#include "models/resnet.hpp"

#include <string>

#include "base/error.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/norm.hpp"
#include "nn/pool.hpp"

namespace dfp::models {
namespace {

// Channels of the first stage; each later stage doubles them and halves the image.
constexpr std::int64_t kCifarWidth = 16;
constexpr std::int64_t kImagenetWidth = 64;
constexpr std::int64_t kBottleneckExpansion = 4;

// "<prefix>conv<id>" (k x k, pad k/2, no bias).
int conv(nn::Net& net, int src, const std::string& prefix, const std::string& id, std::int64_t in,
         std::int64_t out, std::int64_t kernel, std::int64_t stride) {
    return net.add<nn::Conv2d>({src}, prefix + "conv" + id,
                               nn::Conv2dConfig{.in_channels = in,
                                                .out_channels = out,
                                                .kernel = kernel,
                                                .stride = stride,
                                                .pad = kernel / 2,
                                                .bias = false});
}

// conv - "<prefix>bn<id>", with a ReLU fused into the batch-norm when `relu` (one pass over the
// activation, as the paper's code does).
int conv_bn(nn::Net& net, int src, const std::string& prefix, const std::string& id,
            std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
            bool relu) {
    const int x = conv(net, src, prefix, id, in, out, kernel, stride);
    return net.add<nn::BatchNorm2d>({x}, prefix + "bn" + id,
                                    nn::BatchNormConfig{.channels = out, .relu = relu});
}

// The block's output relu(bn(last conv) + shortcut) from its last convolution `residual`
// ("<prefix>conv<id>"): the join and its ReLU are fused into the batch-norm "<prefix>bn<id>"
// (BatchNormConfig::residual), which saves an activation-sized tensor and a third of the memory
// traffic of the two layers. The shortcut is a 1x1 projection with batch-norm when the block
// changes the shape of its input, else the input itself.
int join_shortcut(nn::Net& net, int src, int residual, const std::string& prefix,
                  const std::string& id, std::int64_t in, std::int64_t out, std::int64_t stride) {
    int shortcut = src;
    if (stride != 1 || in != out)
        shortcut = conv_bn(net, src, prefix + "downsample.", "", in, out, 1, stride, false);
    return net.add<nn::BatchNorm2d>(
        {residual, shortcut}, prefix + "bn" + id,
        nn::BatchNormConfig{.channels = out, .relu = true, .residual = true});
}

// 3x3 (stride) - 3x3, both to `out` channels.
int basic_block(nn::Net& net, int src, const std::string& prefix, std::int64_t in, std::int64_t out,
                std::int64_t stride) {
    int x = conv_bn(net, src, prefix, "1", in, out, 3, stride, true);
    x = conv(net, x, prefix, "2", out, out, 3, 1);
    return join_shortcut(net, src, x, prefix, "2", in, out, stride);
}

// 1x1 to `width` - 3x3 (stride) - 1x1 to width * 4 channels.
int bottleneck_block(nn::Net& net, int src, const std::string& prefix, std::int64_t in,
                     std::int64_t width, std::int64_t stride) {
    const std::int64_t out = width * kBottleneckExpansion;
    int x = conv_bn(net, src, prefix, "1", in, width, 1, 1, true);
    x = conv_bn(net, x, prefix, "2", width, width, 3, stride, true);
    x = conv(net, x, prefix, "3", width, out, 1, 1);
    return join_shortcut(net, src, x, prefix, "3", in, out, stride);
}

// Global average pooling and the linear classifier "fc" from `channels` features.
void classifier(nn::Net& net, int src, std::int64_t channels, std::int64_t classes) {
    const int x = net.add<nn::GlobalAvgPool>({src}, "avgpool");
    net.add<nn::Linear>({x}, "fc",
                        nn::LinearConfig{.in_features = channels, .out_features = classes});
}

// The stem, then four stages of `blocks[i]` blocks, then the classifier.
nn::Net resnet_imagenet(const std::string& model, const ImageInput& in, const int (&blocks)[4],
                        bool bottleneck) {
    check_input(in, model);
    nn::Net net;
    int x;
    if (is_small_image(in)) {
        x = conv_bn(net, nn::Net::kInput, "", "1", in.channels, kImagenetWidth, 3, 1, true);
    } else {
        x = conv_bn(net, nn::Net::kInput, "", "1", in.channels, kImagenetWidth, 7, 2, true);
        x = net.add<nn::MaxPool2d>({x}, "maxpool",
                                   nn::Pool2dConfig{.kernel = 3, .stride = 2, .pad = 1});
    }
    std::int64_t channels = kImagenetWidth;
    for (int stage = 0; stage < 4; ++stage) {
        const std::int64_t width = kImagenetWidth << stage;
        for (int b = 0; b < blocks[stage]; ++b) {
            const std::string prefix =
                "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
            const std::int64_t stride = stage > 0 && b == 0 ? 2 : 1;
            x = bottleneck ? bottleneck_block(net, x, prefix, channels, width, stride)
                           : basic_block(net, x, prefix, channels, width, stride);
            channels = bottleneck ? width * kBottleneckExpansion : width;
        }
    }
    classifier(net, x, channels, in.classes);
    output_shape(net, in, model);
    return net;
}

}  // namespace

nn::Net resnet_cifar(int depth, const ImageInput& in) {
    const std::string model = "resnet" + std::to_string(depth);
    if (depth < 8 || (depth - 2) % 6 != 0)
        throw Error(model + ": CIFAR ResNets have depth 6n + 2 >= 8 (20, 32, 56, ...), got " +
                    std::to_string(depth));
    check_input(in, model);
    const int blocks_per_stage = (depth - 2) / 6;
    nn::Net net;
    int x = conv_bn(net, nn::Net::kInput, "", "1", in.channels, kCifarWidth, 3, 1, true);
    std::int64_t channels = kCifarWidth;
    for (int stage = 0; stage < 3; ++stage) {
        const std::int64_t width = kCifarWidth << stage;
        for (int b = 0; b < blocks_per_stage; ++b) {
            const std::string prefix =
                "stage" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
            x = basic_block(net, x, prefix, channels, width, stage > 0 && b == 0 ? 2 : 1);
            channels = width;
        }
    }
    classifier(net, x, channels, in.classes);
    output_shape(net, in, model);
    return net;
}

nn::Net resnet18(const ImageInput& in) {
    return resnet_imagenet("resnet18", in, {2, 2, 2, 2}, false);
}

nn::Net resnet50(const ImageInput& in) {
    return resnet_imagenet("resnet50", in, {3, 4, 6, 3}, true);
}

}  // namespace dfp::models
