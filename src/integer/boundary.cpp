#include "integer/boundary.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "base/error.hpp"
#include "format/quantize.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/loss.hpp"
#include "nn/pool.hpp"

namespace dfp::integer {
namespace {

void quantize_values(std::span<const float> values, const Shape& shape, const std::string& name,
                     Int8Tensor& dst) {
    const Dfp8Tensor q = quantize<std::int8_t>(values.data(), shape, dfp8_tensor(), {}, name);
    dst.shape = shape;
    dst.data = q.mantissas;
    dst.exponent = q.exponents.at(0);
}

Int8Weight quantize_weight(const nn::Param& p) {
    Int8Weight w{p.name, {}, {}};
    quantize_values(p.value, p.shape, p.name, w.value);
    return w;
}

}  // namespace

IntNet from_net(nn::Net& net, const std::string& model) {
    IntNet out;
    for (int node = 1; node < net.nodes(); ++node) {
        nn::Layer& layer = net.layer(node);
        const auto refuse = [&](const std::string& why) {
            throw Error("model '" + model + "' has no integer (int8) version: " + layer.kind() +
                        " '" + layer.name() + "' " + why);
        };
        if (net.srcs(node) != std::vector<int>{node - 1})
            refuse("is not fed by the previous layer alone (the integer engine runs chains)");
        if (auto* conv = dynamic_cast<nn::Conv2d*>(&layer)) {
            const nn::Conv2dConfig& c = conv->config();
            if (conv->bias()) refuse("has a bias (NITI's integer layers have none)");
            out.add(std::make_unique<IntConv2d>(
                layer.name(),
                IntConvConfig{c.in_channels, c.out_channels, c.kernel, c.stride, c.pad},
                quantize_weight(conv->weight())));
        } else if (auto* linear = dynamic_cast<nn::Linear*>(&layer)) {
            if (linear->bias()) refuse("has a bias (NITI's integer layers have none)");
            out.add(std::make_unique<IntLinear>(layer.name(), quantize_weight(linear->weight())));
        } else if (dynamic_cast<nn::Relu*>(&layer)) {
            out.add(std::make_unique<IntRelu>(layer.name()));
        } else if (auto* pool = dynamic_cast<nn::MaxPool2d*>(&layer)) {
            const nn::Pool2dConfig& c = pool->config();
            if (c.pad != 0 || c.ceil_mode) refuse("is padded or in ceil mode");
            out.add(
                std::make_unique<IntMaxPool2d>(layer.name(), IntPoolConfig{c.kernel, c.stride}));
        } else {
            refuse(
                "has no integer version (integer layers: bias-free conv2d and linear, relu, "
                "maxpool2d)");
        }
    }
    if (out.layers().empty()) throw Error("model '" + model + "' has no layers");
    return out;
}

void quantize_images(const nn::Tensor& images, Int8Tensor& dst) {
    quantize_values(images.data, images.shape, "input images", dst);
}

nn::Tensor dequantize(const Int8Tensor& src) {
    nn::Tensor out(src.shape);
    std::transform(src.data.begin(), src.data.end(), out.data.begin(),
                   [&](std::int8_t v) { return std::ldexp(static_cast<float>(v), src.exponent); });
    return out;
}

double mean_loss(const Int8Tensor& logits, std::span<const int> labels) {
    nn::Tensor diff;
    return nn::softmax_cross_entropy(dequantize(logits), labels, diff);
}

train::Evaluation evaluate(IntNet& net, const data::ImageDataset& data, std::int64_t batch) {
    std::vector<int> labels;
    std::vector<std::int64_t> indices;
    Int8Tensor images;
    double loss_sum = 0;
    std::int64_t top1 = 0, top5 = 0;
    for (std::int64_t first = 0; first < data.size(); first += batch) {
        const std::int64_t b = std::min(batch, data.size() - first);
        indices.resize(static_cast<std::size_t>(b));
        for (std::int64_t i = 0; i < b; ++i) indices[i] = first + i;
        quantize_images(train::image_batch(data, indices, labels), images);
        const Int8Tensor& logits_q = net.forward(images);
        // A linear classifier's exact INT32 scores rank the classes without the ties of int8.
        nn::Tensor logits = dequantize(logits_q);
        if (const auto* fc = dynamic_cast<const IntLinear*>(net.layers().back().get()))
            std::transform(fc->dst_int32().begin(), fc->dst_int32().end(), logits.data.begin(),
                           [&](std::int32_t v) {
                               return std::ldexp(static_cast<float>(v), fc->dst_int32_exponent());
                           });
        nn::Tensor diff;
        loss_sum += static_cast<double>(nn::softmax_cross_entropy(logits, labels, diff)) *
                    static_cast<double>(b);
        top1 += train::count_top_k(logits, labels, 1);
        top5 += train::count_top_k(logits, labels, 5);
    }
    const auto n = static_cast<double>(data.size());
    return {loss_sum / n, static_cast<double>(top1) / n, static_cast<double>(top5) / n};
}

}  // namespace dfp::integer
