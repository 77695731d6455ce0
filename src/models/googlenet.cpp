#include "models/googlenet.hpp"

#include <string>

#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/join.hpp"
#include "nn/linear.hpp"
#include "nn/norm.hpp"
#include "nn/pool.hpp"

namespace dfp::models {
namespace {

// Output channels of the four branches of an inception module and of the two 1x1 reductions.
struct Inception {
    const char* name;
    std::int64_t b1, b3_reduce, b3, b5_reduce, b5, pool_proj;
};
// The paper's table 1.
constexpr Inception kInception3[] = {{"3a", 64, 96, 128, 16, 32, 32},
                                     {"3b", 128, 128, 192, 32, 96, 64}};
constexpr Inception kInception4[] = {{"4a", 192, 96, 208, 16, 48, 64},
                                     {"4b", 160, 112, 224, 24, 64, 64},
                                     {"4c", 128, 128, 256, 24, 64, 64},
                                     {"4d", 112, 144, 288, 32, 64, 64},
                                     {"4e", 256, 160, 320, 32, 128, 128}};
constexpr Inception kInception5[] = {{"5a", 256, 160, 320, 32, 128, 128},
                                     {"5b", 384, 192, 384, 48, 128, 128}};
constexpr std::int64_t kStemWidth = 64, kConv2Width = 192;
constexpr float kDropout = 0.4f;
constexpr nn::LrnConfig kLrn{.size = 5, .alpha = 1e-4f, .beta = 0.75f, .k = 1.0f};

// The ReLU fused into the convolution: its output is written once (Conv2dConfig::relu).
int conv_relu(nn::Net& net, int src, const std::string& name, std::int64_t in, std::int64_t out,
              std::int64_t kernel, std::int64_t stride = 1) {
    return net.add<nn::Conv2d>({src}, name,
                               nn::Conv2dConfig{.in_channels = in,
                                                .out_channels = out,
                                                .kernel = kernel,
                                                .stride = stride,
                                                .pad = kernel / 2,
                                                .relu = true});
}

int max_pool(nn::Net& net, int src, const std::string& name) {
    return net.add<nn::MaxPool2d>({src}, name,
                                  nn::Pool2dConfig{.kernel = 3, .stride = 2, .ceil_mode = true});
}

// Adds the module on `src` (`in` channels); returns its concatenation and sets `in` to its width.
int inception(nn::Net& net, int src, const Inception& m, std::int64_t& in) {
    const std::string p = std::string("inception_") + m.name + ".";
    const int b1 = conv_relu(net, src, p + "1x1", in, m.b1, 1);
    const int b3 = conv_relu(net, conv_relu(net, src, p + "3x3_reduce", in, m.b3_reduce, 1),
                             p + "3x3", m.b3_reduce, m.b3, 3);
    const int b5 = conv_relu(net, conv_relu(net, src, p + "5x5_reduce", in, m.b5_reduce, 1),
                             p + "5x5", m.b5_reduce, m.b5, 5);
    const int pooled = net.add<nn::MaxPool2d>({src}, p + "pool",
                                              nn::Pool2dConfig{.kernel = 3, .stride = 1, .pad = 1});
    const int proj = conv_relu(net, pooled, p + "pool_proj", in, m.pool_proj, 1);
    in = m.b1 + m.b3 + m.b5 + m.pool_proj;
    return net.add<nn::Concat>({b1, b3, b5, proj}, p + "output");
}

}  // namespace

nn::Net googlenet(const ImageInput& in) {
    const std::string model = "googlenet";
    check_input(in, model);
    const bool small = is_small_image(in);
    nn::Net net;
    int x = small ? conv_relu(net, nn::Net::kInput, "conv1", in.channels, kStemWidth, 3)
                  : conv_relu(net, nn::Net::kInput, "conv1", in.channels, kStemWidth, 7, 2);
    if (!small) x = max_pool(net, x, "pool1");
    x = net.add<nn::Lrn>({x}, "norm1", kLrn);
    x = conv_relu(net, x, "conv2_reduce", kStemWidth, kStemWidth, 1);
    x = conv_relu(net, x, "conv2", kStemWidth, kConv2Width, 3);
    x = net.add<nn::Lrn>({x}, "norm2", kLrn);
    if (!small) x = max_pool(net, x, "pool2");
    std::int64_t channels = kConv2Width;
    for (const Inception& m : kInception3) x = inception(net, x, m, channels);
    x = max_pool(net, x, "pool3");
    for (const Inception& m : kInception4) x = inception(net, x, m, channels);
    x = max_pool(net, x, "pool4");
    for (const Inception& m : kInception5) x = inception(net, x, m, channels);
    x = net.add<nn::GlobalAvgPool>({x}, "pool5");
    x = net.add<nn::Dropout>({x}, "drop", kDropout);
    net.add<nn::Linear>({x}, "fc",
                        nn::LinearConfig{.in_features = channels, .out_features = in.classes});
    output_shape(net, in, model);
    return net;
}

}  // namespace dfp::models
