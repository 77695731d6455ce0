#include "nn/net.hpp"

#include <algorithm>
#include <cmath>

#include "base/error.hpp"
#include "nn/profile.hpp"

namespace dfp::nn {

Net::Net() {
    nodes_.push_back({});
}

int Net::add(std::unique_ptr<Layer> layer, std::vector<int> srcs) {
    if (!layer) throw Error("Net::add: null layer");
    for (int s : srcs)
        if (s < 0 || s >= nodes())
            throw Error("Net::add: layer '" + layer->name() + "' names input node " +
                        std::to_string(s) + ", but only nodes 0.." + std::to_string(nodes() - 1) +
                        " exist");
    for (int i = 1; i < nodes(); ++i)
        if (nodes_[i].layer->name() == layer->name())
            throw Error("Net::add: layer name '" + layer->name() + "' is already in use");
    nodes_.push_back({std::move(layer), std::move(srcs), {}, {}});
    return output();
}

const Tensor& Net::forward(const Tensor& src, const Context& ctx) {
    if (nodes() < 2) throw Error("Net::forward: the network has no layers");
    nodes_[kInput].value = src;
    std::vector<const Tensor*> srcs;
    Profiler* const profiler = active_profiler();
    for (int i = 1; i < nodes(); ++i) {
        Node& node = nodes_[i];
        srcs.clear();
        for (int s : node.srcs) srcs.push_back(&nodes_[s].value);
        const ProfileScope scope(profiler,
                                 profiler ? layer_section(*node.layer, false) : Section::other);
        node.layer->forward(srcs, node.value, ctx);
    }
    return nodes_.back().value;
}

void Net::backward(const Tensor& diff_dst) {
    if (nodes() < 2) throw Error("Net::backward: the network has no layers");
    if (diff_dst.shape != nodes_.back().value.shape)
        throw Error("Net::backward: the output gradient has shape " + shape_string(diff_dst.shape) +
                    ", the output '" + nodes_.back().layer->name() + "' has " +
                    shape_string(nodes_.back().value.shape));
    // Layers add into their sources' gradients, so a node that feeds several layers sums them.
    for (int i = 1; i < output(); ++i) {
        nodes_[i].grad.resize(nodes_[i].value.shape);
        std::fill(nodes_[i].grad.data.begin(), nodes_[i].grad.data.end(), 0.0f);
    }
    nodes_.back().grad = diff_dst;
    std::vector<const Tensor*> srcs;
    std::vector<Tensor*> diff_srcs;
    Profiler* const profiler = active_profiler();
    for (int i = output(); i >= 1; --i) {
        Node& node = nodes_[i];
        srcs.clear();
        diff_srcs.clear();
        for (int s : node.srcs) {
            srcs.push_back(&nodes_[s].value);
            diff_srcs.push_back(s == kInput ? nullptr : &nodes_[s].grad);
        }
        const ProfileScope scope(profiler,
                                 profiler ? layer_section(*node.layer, true) : Section::other);
        node.layer->backward(srcs, node.value, node.grad, diff_srcs);
    }
}

void Net::zero_grad() {
    for (Param* p : params()) std::fill(p->grad.begin(), p->grad.end(), 0.0f);
}

std::vector<Param*> Net::params() {
    std::vector<Param*> out;
    for (int i = 1; i < nodes(); ++i)
        for (Param* p : nodes_[i].layer->params()) out.push_back(p);
    return out;
}

std::vector<NamedBuffer> Net::buffers() {
    std::vector<NamedBuffer> out;
    for (int i = 1; i < nodes(); ++i)
        for (const NamedBuffer& b : nodes_[i].layer->buffers()) out.push_back(b);
    return out;
}

void Net::apply_precision(const precision::Policy& policy) {
    std::vector<Layer*> gemm_layers;
    for (int i = 1; i < nodes(); ++i)
        if (nodes_[i].layer->precision()) gemm_layers.push_back(nodes_[i].layer.get());
    for (std::size_t i = 0; i < gemm_layers.size(); ++i)
        gemm_layers[i]->set_precision(
            policy.for_layer(gemm_layers[i]->name(), i, gemm_layers.size()));
}

std::string Net::precision_summary() const {
    std::string out;
    for (int i = 1; i < nodes(); ++i) {
        const Layer& layer = *nodes_[i].layer;
        const precision::LayerPrecision* p = layer.precision();
        if (!p) continue;
        out += layer.name() + " " + precision::compute_name(p->compute) + "\n";
    }
    return out;
}

void Net::check_node(int node) const {
    if (node < 0 || node >= nodes())
        throw Error("Net: node " + std::to_string(node) + " does not exist (nodes 0.." +
                    std::to_string(nodes() - 1) + ")");
}

Layer& Net::layer(int node) {
    check_node(node);
    if (node == kInput) throw Error("Net::layer: node 0 is the input, not a layer");
    return *nodes_[node].layer;
}

const Tensor& Net::value(int node) const {
    check_node(node);
    return nodes_[node].value;
}

const Tensor& Net::grad(int node) const {
    check_node(node);
    return nodes_[node].grad;
}

const std::vector<int>& Net::srcs(int node) const {
    check_node(node);
    return nodes_[node].srcs;
}

std::string Net::first_nonfinite_layer() const {
    for (int i = 1; i < nodes(); ++i) {
        const auto& v = nodes_[i].value.data;
        if (!std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); }))
            return nodes_[i].layer->name();
    }
    return "";
}

}  // namespace dfp::nn
