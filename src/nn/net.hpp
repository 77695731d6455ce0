// A network: a DAG of layers built in code. Node 0 is the input; each add() appends a layer fed by
// existing nodes and returns its node id, so the order of creation is a topological order:
// forward runs it front to back, backward back to front. The last node is the output.
//
//   Net net;
//   int x = net.add<Conv2d>({Net::kInput}, "conv1", Conv2dConfig{.in_channels = 3, ...});
//   x = net.add<Relu>({x}, "relu1");
//
// Every node keeps its activation (backward reads them). Gradients are held only while needed:
// from the backward of a node's last consumer to its own backward, in buffers pooled and reused
// across nodes and steps.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/layer.hpp"
#include "nn/tensor.hpp"

namespace dfp::nn {

class Net {
  public:
    static constexpr int kInput = 0;

    Net();
    // Appends `layer` fed by the nodes `srcs` (ids returned earlier, or kInput); returns its id.
    // Throws dfp::Error on an unknown id or a layer name already in use.
    int add(std::unique_ptr<Layer> layer, std::vector<int> srcs);
    template <class L, class... Args>
    int add(std::vector<int> srcs, Args&&... args) {
        return add(std::make_unique<L>(std::forward<Args>(args)...), std::move(srcs));
    }

    // Runs every layer on src; returns the output node's value.
    const Tensor& forward(const Tensor& src, const Context& ctx);
    // After forward: back-propagates diff_dst = dL/d(output) and adds every parameter gradient.
    // layer_done (if set) is called after each layer's backward, when its parameter gradients
    // are final: data-parallel training starts exchanging them while earlier layers still run.
    void backward(const Tensor& diff_dst, const std::function<void(Layer&)>& layer_done = {});
    // Sets every parameter gradient to zero, lazily (Param::clear_grad): the next backward
    // stores the gradients instead of adding them; Param::settle_grad writes the zeros out.
    void zero_grad();

    std::vector<Param*> params();
    std::vector<NamedBuffer> buffers();
    // Sets the precision of every conv/linear layer (Layer::precision() non-null) from
    // policy.for_layer(name, index, count), index counting those layers in creation order.
    void apply_precision(const precision::Policy& policy);
    // One line per conv/linear layer, in order, for logs: "conv1 fp32\nconv2 dfp16\n...". The
    // formats are the policy's (precision::Policy::describe); Layer::precision() has them all.
    std::string precision_summary() const;
    int nodes() const { return static_cast<int>(nodes_.size()); }
    int output() const { return nodes() - 1; }
    // Node ids >= 1 have a layer; node 0 is the input.
    Layer& layer(int node);
    const Tensor& value(int node) const;
    // The nodes feeding `node` (empty for the input): the DAG's edges, for passes over the Net
    // that run no layer (shape inference, statistics).
    const std::vector<int>& srcs(int node) const;
    // Gradient buffers allocated (held now or pooled): after a backward, the most gradients that
    // were alive at once, e.g. 2 for a chain of layers.
    std::size_t gradient_buffers() const;
    // The name of the first layer whose output holds a NaN or Inf after the last forward, or "".
    std::string first_nonfinite_layer() const;

  private:
    struct Node {
        std::unique_ptr<Layer> layer;  // null for the input
        std::vector<int> srcs;
        Tensor value, grad;
    };
    void check_node(int node) const;
    // The gradient buffer of `node`, from the pool, shaped like its value (values unspecified:
    // its first writer overwrites it); and back.
    Tensor& acquire_grad(int node);
    void release_grad(int node);

    std::vector<Node> nodes_;
    std::vector<UninitAlignedVector<float>> free_grads_;  // gradient buffers not in use
};

}  // namespace dfp::nn
