// The model zoo: parameter and multiply-add totals against the published figures, every model at
// 28x28 grey, 32x32 colour and 224x224, a training step at 32x32, and the registry's errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "models/registry.hpp"
#include "models/resnet.hpp"
#include "models/summary.hpp"
#include "nn/loss.hpp"

namespace dfp {
namespace {

constexpr models::ImageInput kMnist{28, 28, 1, 10};
constexpr models::ImageInput kCifar{32, 32, 3, 10};
constexpr models::ImageInput kImagenet{224, 224, 3, 1000};

std::int64_t parameter_count(nn::Net& net) {
    std::int64_t n = 0;
    for (const nn::Param* p : net.params()) n += std::int64_t(p->value.size());
    return n;
}

struct Published {
    const char* model;
    models::ImageInput input;
    std::int64_t params;  // exact
    double macs;          // as published, rounded
    double macs_tolerance;
    const char* source;
};

// Parameters: torchvision's model documentation (num_params) for the ImageNet models; the CIFAR
// ResNets are the paper's option-A counts (269,722, 464,154 and 853,018, as counted by the
// common PyTorch ports) plus the two option-B projections, 16*32 + 2*32 and 32*64 + 2*64 = 2,752.
// GoogLeNet is counted from the paper's table 1 with biases and a 1000-way fc (6,998,552; the
// table rounds to 6.8M). Multiply-adds: torchvision's GFLOPS column (which counts multiply-adds);
// for the CIFAR ResNets the option-A figures of the pruning literature (40.55M, 68.86M, 125.49M)
// plus the projections, 16*16*32*16 + 8*8*64*32 = 262,144; for GoogLeNet the sum of table 1's
// "ops" column (1,586M; the text rounds to 1.5 G).
constexpr std::int64_t kOptionBParams = 2'752;
constexpr double kOptionBMacs = 262'144;
const Published kPublished[] = {
    {"resnet20", kCifar, 269'722 + kOptionBParams, 40.55e6 + kOptionBMacs, 2e-4,
     "He et al. 2016, option B"},
    {"resnet32", kCifar, 464'154 + kOptionBParams, 68.86e6 + kOptionBMacs, 2e-4,
     "He et al. 2016, option B"},
    {"resnet56", kCifar, 853'018 + kOptionBParams, 125.49e6 + kOptionBMacs, 2e-4,
     "He et al. 2016, option B"},
    {"resnet18", kImagenet, 11'689'512, 1.81e9, 5e-3, "torchvision resnet18"},
    {"resnet50", kImagenet, 25'557'032, 4.09e9, 5e-3, "torchvision resnet50 (v1.5)"},
    {"vgg16", kImagenet, 138'357'544, 15.47e9, 5e-3, "torchvision vgg16"},
    {"vgg16_bn", kImagenet, 138'365'992, 15.47e9, 5e-3, "torchvision vgg16_bn"},
    {"alexnet", kImagenet, 61'100'840, 0.71e9, 1e-2, "torchvision alexnet"},
    {"googlenet", kImagenet, 6'998'552, 1.586e9, 5e-3,
     "Szegedy et al. 2015 table 1 (bvlc_googlenet)"},
};

TEST(Models, TotalsMatchThePublishedFigures) {
    for (const Published& p : kPublished) {
        nn::Net net = models::build(p.model, p.input);
        const std::vector<models::LayerStats> layers = models::layer_stats(net, p.input);
        const models::Totals t = models::totals(layers);
        const double macs_error = std::abs(double(t.macs) / p.macs - 1.0);
        const bool ok = t.params == p.params && t.params == parameter_count(net) &&
                        macs_error <= p.macs_tolerance &&
                        layers.back().dst == (Shape{1, std::size_t(p.input.classes)});
        std::printf(
            "model %-10s %lldx%lld params %11lld (published %11lld) MACs %8.4f G (published %7.4f "
            "G) %s  [%s]\n",
            p.model, static_cast<long long>(p.input.height), static_cast<long long>(p.input.width),
            static_cast<long long>(t.params), static_cast<long long>(p.params),
            double(t.macs) * 1e-9, p.macs * 1e-9, ok ? "PASS" : "FAIL", p.source);
        EXPECT_TRUE(ok) << p.model;
    }
}

TEST(Models, MacsFollowTheConvolutionAndLinearFormulas) {
    // resnet20 at 32x32: conv1 is 32*32 outputs x 16 channels x 3*3*3, fc is 64 x 10.
    nn::Net net = models::build("resnet20", kCifar);
    const std::vector<models::LayerStats> layers = models::layer_stats(net, kCifar);
    EXPECT_EQ(layers.front().name, "conv1");
    EXPECT_EQ(layers.front().macs, 32 * 32 * 16 * 3 * 3 * 3);
    EXPECT_EQ(layers.front().params, 16 * 3 * 3 * 3);  // no bias: the batch-norm has one
    EXPECT_EQ(layers.back().name, "fc");
    EXPECT_EQ(layers.back().macs, 64 * 10);
    EXPECT_EQ(layers.back().params, 64 * 10 + 10);
    for (const models::LayerStats& l : layers)
        if (l.kind != "conv2d" && l.kind != "linear") {
            EXPECT_EQ(l.macs, 0) << l.name;
        }
}

// Layer::fused_relu reaches the summary (inspect shows it as kind+relu): ResNet's batch-norms
// before a ReLU fuse it, and each block's last batch-norm fuses the residual join and its ReLU
// (kind+add+relu); the projections' batch-norms and the classifier fuse neither. AlexNet's
// convolutions fuse their ReLU.
TEST(Models, LayerStatsNameTheFusedRelus) {
    nn::Net resnet = models::build("resnet20", kCifar);
    int bn_relu = 0, bn_plain = 0, bn_join = 0;
    for (const models::LayerStats& l : models::layer_stats(resnet, kCifar)) {
        EXPECT_NE(l.kind, "add") << l.name << ": the joins are fused into the batch-norms";
        if (l.kind == "batchnorm2d") {
            EXPECT_TRUE(!l.fused_add || l.fused_relu) << l.name;
            ++(l.fused_add ? bn_join : l.fused_relu ? bn_relu : bn_plain);
        } else {
            EXPECT_FALSE(l.fused_add) << l.name;
            if (l.kind == "conv2d" || l.kind == "linear") {
                EXPECT_FALSE(l.fused_relu) << l.name;
            }
        }
    }
    EXPECT_EQ(bn_relu, 1 + 9);  // the stem's and the first of each of the 9 blocks
    EXPECT_EQ(bn_join, 9);      // the second of each block
    EXPECT_EQ(bn_plain, 2);     // the projections' (first block of stages 2 and 3)
    nn::Net alexnet = models::build("alexnet", kImagenet);
    const std::vector<models::LayerStats> layers = models::layer_stats(alexnet, kImagenet);
    EXPECT_EQ(layers.front().kind, "conv2d");
    EXPECT_TRUE(layers.front().fused_relu);
    EXPECT_FALSE(layers.back().fused_relu);
}

bool published_at_224(const std::string& name) {
    for (const Published& p : kPublished)
        if (p.model == name && p.input.height == kImagenet.height) return true;
    return false;
}

// Every model at every standard size, and one training step at 32x32 whose node shapes are the
// inferred ones and whose logits and gradients are finite. The models with published figures at
// 224x224 were built at that size by TotalsMatchThePublishedFigures (VGG-16 takes a second to
// allocate and initialise its 138M parameters, so it is not built twice).
TEST(Models, EveryModelBuildsForEachInputAndTrainsAt32x32) {
    for (const std::string& name : models::names()) {
        const auto start = std::chrono::steady_clock::now();
        std::vector<models::ImageInput> inputs{kMnist};
        if (!published_at_224(name)) inputs.push_back(kImagenet);
        for (const models::ImageInput& in : inputs) {
            nn::Net net = models::build(name, in);
            EXPECT_EQ(models::infer_shapes(net, models::image_shape(in, 1)).back(),
                      (Shape{1, std::size_t(in.classes)}))
                << name << " " << models::input_string(in);
        }
        constexpr std::int64_t kBatch = 2;
        nn::Net net = models::build(name, kCifar);
        const std::vector<Shape> shapes =
            models::infer_shapes(net, models::image_shape(kCifar, kBatch));
        nn::Tensor x(models::image_shape(kCifar, kBatch));
        for (std::size_t i = 0; i < x.numel(); ++i) x.data[i] = std::sin(0.1f * float(i));
        const nn::Tensor& logits = net.forward(x, {nn::Mode::train, 0});
        bool shapes_match = true;
        for (int node = 1; node < net.nodes(); ++node)
            shapes_match &= net.value(node).shape == shapes[node];
        const std::vector<int> labels{1, 7};
        nn::Tensor dlogits;
        const float loss = nn::softmax_cross_entropy(logits, labels, dlogits);
        net.zero_grad();
        net.backward(dlogits);
        bool grads_finite = true, grads_nonzero = false;
        for (const nn::Param* p : net.params())
            for (float g : p->grad) {
                grads_finite &= std::isfinite(g);
                grads_nonzero |= g != 0.0f;
            }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const bool ok = logits.shape == (Shape{kBatch, 10}) &&
                        net.first_nonfinite_layer().empty() && std::isfinite(loss) &&
                        shapes_match && grads_finite && grads_nonzero;
        std::printf("model %-10s 28x28x1 and 224x224x3 build, 32x32x3 step loss %.3f, %.2f s %s\n",
                    name.c_str(), loss, seconds, ok ? "PASS" : "FAIL");
        EXPECT_EQ(logits.shape, (Shape{kBatch, 10})) << name;
        EXPECT_TRUE(net.first_nonfinite_layer().empty())
            << name << ": " << net.first_nonfinite_layer();
        EXPECT_TRUE(std::isfinite(loss)) << name;
        EXPECT_TRUE(shapes_match) << name << ": inferred shapes differ from forward's";
        EXPECT_TRUE(grads_finite && grads_nonzero) << name;
    }
}

TEST(Models, UnknownNameListsTheModels) {
    try {
        models::build("resnet51", kCifar);
        FAIL();
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const std::string& name : models::names())
            EXPECT_NE(msg.find(name), std::string::npos) << msg;
    }
}

TEST(Models, InputsTooSmallNameTheModel) {
    const models::ImageInput tiny{8, 8, 3, 10};
    for (const char* name : {"vgg16", "alexnet", "lenet5"}) {
        try {
            models::build(name, tiny);
            FAIL() << name;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(models::build("resnet20", {32, 32, 3, 1}), Error);  // one class
    EXPECT_THROW(models::resnet_cifar(21, kCifar), Error);           // not 6n + 2
}

}  // namespace
}  // namespace dfp
