#include "models/summary.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "nn/activation.hpp"
#include "nn/conv2d.hpp"
#include "nn/join.hpp"
#include "nn/linear.hpp"
#include "nn/norm.hpp"
#include "nn/pool.hpp"

namespace dfp::models {
namespace {

const Shape& single_src(const nn::Layer& layer, const std::vector<Shape>& src) {
    if (src.size() != 1) layer.fail("takes 1 input, got " + std::to_string(src.size()));
    return src[0];
}

const Shape& nhwc_src(const nn::Layer& layer, const std::vector<Shape>& src) {
    const Shape& s = single_src(layer, src);
    if (s.size() != 4) layer.fail("expects an NHWC input, got shape " + shape_string(s));
    return s;
}

Shape pooled(const nn::PoolGeometry& g) {
    return {std::size_t(g.n), std::size_t(g.oh), std::size_t(g.ow), std::size_t(g.c)};
}

struct LayerShape {
    Shape dst;
    std::int64_t macs = 0;
};

// The rules mirror each layer's forward; Conv2d and pooling reuse the layers' own geometry. A layer
// kind without a rule here is an error rather than a guess.
LayerShape infer_layer(nn::Layer& layer, const std::vector<Shape>& src) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&layer)) {
        const nn::ConvGeometry g = conv->geometry(single_src(layer, src));
        return {{std::size_t(g.n), std::size_t(g.oh), std::size_t(g.ow), std::size_t(g.k)},
                g.n * g.oh * g.ow * g.k * g.kernel * g.kernel * g.c};
    }
    if (auto* fc = dynamic_cast<nn::Linear*>(&layer)) {
        const Shape& s = single_src(layer, src);
        const std::int64_t out = std::int64_t(fc->weight().shape[0]),
                           in = std::int64_t(fc->weight().shape[1]);
        if (s.size() < 2 || shape_numel(s) == 0 || std::int64_t(shape_numel(s) / s[0]) != in)
            layer.fail("expects {N, ...} with " + std::to_string(in) +
                       " features per sample, got shape " + shape_string(s));
        return {{s[0], std::size_t(out)}, std::int64_t(s[0]) * in * out};
    }
    if (auto* pool = dynamic_cast<nn::Pool2d*>(&layer))
        return {pooled(pool->geometry(single_src(layer, src)))};
    if (dynamic_cast<nn::GlobalAvgPool*>(&layer)) {
        const Shape& s = nhwc_src(layer, src);
        return {{s[0], 1, 1, s[3]}};
    }
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&layer)) {
        if (bn->fused_residual()) {  // (src, residual)
            if (src.size() != 2)
                layer.fail("takes 2 inputs (the second is the residual), got " +
                           std::to_string(src.size()));
            if (src[1] != src[0])
                layer.fail("the residual input has shape " + shape_string(src[1]) + ", expected " +
                           shape_string(src[0]));
        }
        const std::vector<Shape> input(src.begin(),
                                       bn->fused_residual() ? src.begin() + 1 : src.end());
        const Shape s = nhwc_src(layer, input);
        if (s[3] != bn->gamma().shape[0])
            layer.fail("expects " + std::to_string(bn->gamma().shape[0]) + " channels, got shape " +
                       shape_string(s));
        return {s};
    }
    if (dynamic_cast<nn::Lrn*>(&layer)) return {nhwc_src(layer, src)};
    if (dynamic_cast<nn::Relu*>(&layer) || dynamic_cast<nn::Dropout*>(&layer))
        return {single_src(layer, src)};
    if (dynamic_cast<nn::Add*>(&layer)) {
        if (src.size() < 2)
            layer.fail("takes at least 2 inputs, got " + std::to_string(src.size()));
        for (const Shape& s : src)
            if (s != src[0])
                layer.fail("an input has shape " + shape_string(s) + ", expected " +
                           shape_string(src[0]));
        return {src[0]};
    }
    if (dynamic_cast<nn::Concat*>(&layer)) {
        if (src.empty() || src[0].empty())
            layer.fail("takes at least 1 input of at least one dimension");
        Shape dst = src[0];
        dst.back() = 0;
        for (const Shape& s : src) {
            if (s.size() != dst.size() || !std::equal(dst.begin(), dst.end() - 1, s.begin()))
                layer.fail("input " + shape_string(s) + " does not match " + shape_string(src[0]) +
                           " outside the last axis");
            dst.back() += s.back();
        }
        return {dst};
    }
    layer.fail("has no shape rule in models/summary.cpp");
}

}  // namespace

std::vector<Shape> infer_shapes(nn::Net& net, const Shape& src) {
    std::vector<Shape> shapes{src};
    std::vector<Shape> srcs;
    for (int node = 1; node < net.nodes(); ++node) {
        srcs.clear();
        for (int s : net.srcs(node)) srcs.push_back(shapes[s]);
        shapes.push_back(infer_layer(net.layer(node), srcs).dst);
    }
    return shapes;
}

std::vector<LayerStats> layer_stats(nn::Net& net, const ImageInput& in) {
    std::vector<Shape> shapes{image_shape(in, 1)};
    std::vector<LayerStats> rows;
    std::vector<Shape> srcs;
    for (int node = 1; node < net.nodes(); ++node) {
        nn::Layer& layer = net.layer(node);
        srcs.clear();
        for (int s : net.srcs(node)) srcs.push_back(shapes[s]);
        LayerShape inferred = infer_layer(layer, srcs);
        shapes.push_back(inferred.dst);
        const auto* bn = dynamic_cast<const nn::BatchNorm2d*>(&layer);
        LayerStats row{layer.name(),
                       layer.kind(),
                       bn && bn->fused_residual(),
                       layer.fused_relu(),
                       std::move(inferred.dst),
                       0,
                       inferred.macs};
        for (const nn::Param* p : layer.params()) row.params += std::int64_t(p->value.size());
        rows.push_back(std::move(row));
    }
    return rows;
}

Totals totals(const std::vector<LayerStats>& layers) {
    Totals t;
    for (const LayerStats& l : layers) {
        t.params += l.params;
        t.macs += l.macs;
    }
    return t;
}

}  // namespace dfp::models
