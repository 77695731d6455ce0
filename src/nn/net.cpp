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
    if (srcs.size() == 1)
        for (int i = 1; i < nodes(); ++i)
            if (nodes_[i].srcs == srcs) layer->add_input_sibling(*nodes_[i].layer);
    for (const int s : srcs)
        if (s != kInput) nodes_[std::size_t(s)].layer->add_consumer(*layer);
    if (!srcs.empty() && srcs[0] != kInput)
        layer->set_input_producer(*nodes_[std::size_t(srcs[0])].layer);
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
        const LayerTimer timer(profiler, i);
        const ProfileScope scope(profiler,
                                 profiler ? layer_section(*node.layer, false) : Section::other);
        node.layer->forward(srcs, node.value, ctx);
    }
    return nodes_.back().value;
}

Tensor& Net::acquire_grad(int node) {
    Tensor& g = nodes_[node].grad;
    const std::size_t n = nodes_[node].value.numel();
    // The smallest pooled buffer that holds n values, else the largest (it grows), else a new one.
    auto best = free_grads_.end();
    for (auto it = free_grads_.begin(); it != free_grads_.end(); ++it)
        if (it->capacity() >= n && (best == free_grads_.end() || it->capacity() < best->capacity()))
            best = it;
    if (best == free_grads_.end())
        for (auto it = free_grads_.begin(); it != free_grads_.end(); ++it)
            if (best == free_grads_.end() || it->capacity() > best->capacity()) best = it;
    if (best != free_grads_.end()) {
        g.data = std::move(*best);
        free_grads_.erase(best);
    }
    g.shape = nodes_[node].value.shape;
    // Without zeroing (Tensor's storage): Net::backward has every gradient written in full, by its
    // first consumer or by a fill of zeros, before anything reads it. Zeroing the growth of pooled
    // buffers cost ResNet-50 1.4 GB of stores per step at batch 32 (45 ms of "other").
    g.data.resize(n);
    return g;
}

void Net::release_grad(int node) {
    Tensor& g = nodes_[node].grad;
    if (g.data.capacity() > 0) free_grads_.push_back(std::move(g.data));
    g = Tensor();
}

void Net::backward(const Tensor& diff_dst, const std::function<void(Layer&)>& layer_done) {
    if (nodes() < 2) throw Error("Net::backward: the network has no layers");
    if (diff_dst.shape != nodes_.back().value.shape)
        throw Error("Net::backward: the output gradient has shape " + shape_string(diff_dst.shape) +
                    ", the output '" + nodes_.back().layer->name() + "' has " +
                    shape_string(nodes_.back().value.shape));
    // A node's gradient lives from the backward of its last consumer (the first to run) to its
    // own backward, then its buffer goes back to a pool: a chain of layers holds two gradients at
    // a time instead of one per node, and the pool's buffers are reused from step to step. The
    // first consumer to run writes the gradient (Layer::backward_into), later ones add to it.
    std::vector<bool> held(std::size_t(nodes()), false);
    acquire_grad(output()).data = diff_dst.data;
    held[std::size_t(output())] = true;
    std::vector<const Tensor*> srcs;
    std::vector<Tensor*> diff_srcs;
    Profiler* const profiler = active_profiler();
    for (int i = output(); i >= 1; --i) {
        Node& node = nodes_[i];
        srcs.clear();
        diff_srcs.clear();
        Overwrite overwrite;
        for (std::size_t j = 0; j < node.srcs.size(); ++j) {
            const int s = node.srcs[j];
            srcs.push_back(&nodes_[s].value);
            diff_srcs.push_back(s == kInput ? nullptr : &nodes_[s].grad);
            if (s == kInput || held[std::size_t(s)]) continue;
            acquire_grad(s);
            held[std::size_t(s)] = true;
            // A node feeding this layer twice (Add(x, x)) is zeroed here and added to twice, as
            // is an input past the ones an Overwrite mask can mark.
            if (j >= Overwrite::kMax || std::count(node.srcs.begin(), node.srcs.end(), s) > 1)
                std::fill(nodes_[s].grad.data.begin(), nodes_[s].grad.data.end(), 0.0f);
            else
                overwrite.set(j);
        }
        // A node no layer consumes (a dead branch) gets a zero gradient.
        if (!held[std::size_t(i)]) {
            Tensor& g = acquire_grad(i);
            std::fill(g.data.begin(), g.data.end(), 0.0f);
        }
        {
            const LayerTimer timer(profiler, i);
            const ProfileScope scope(profiler,
                                     profiler ? layer_section(*node.layer, true) : Section::other);
            node.layer->backward_into(srcs, node.value, node.grad, diff_srcs, overwrite);
        }
        release_grad(i);
        for (Param* p : node.layer->params()) p->settle_grad();  // one it did not write
        if (layer_done) layer_done(*node.layer);
    }
}

std::size_t Net::gradient_buffers() const {
    std::size_t held = 0;
    for (const Node& node : nodes_) held += node.grad.data.capacity() > 0;
    return held + free_grads_.size();
}

void Net::zero_grad() {
    for (Param* p : params()) p->clear_grad();
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
