#include "integer/net.hpp"

#include <utility>

#include "base/error.hpp"
#include "integer/loss.hpp"

namespace dfp::integer {

void IntNet::add(std::unique_ptr<IntLayer> layer) {
    layers_.push_back(std::move(layer));
    values_.emplace_back();
}

std::vector<Int8Weight*> IntNet::weights() {
    std::vector<Int8Weight*> out;
    for (const auto& layer : layers_)
        if (Int8Weight* w = layer->weight()) out.push_back(w);
    return out;
}

const Int8Tensor& IntNet::forward(const Int8Tensor& src) {
    if (layers_.empty()) throw Error("integer net: no layers");
    src_ = src;
    const Int8Tensor* x = &src_;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        layers_[i]->forward(*x, values_[i]);
        x = &values_[i];
    }
    return *x;
}

void IntNet::backward(const Int8Tensor& diff_dst) {
    grad_ = diff_dst;
    for (std::size_t i = layers_.size(); i-- > 0;) {
        const Int8Tensor& src = i == 0 ? src_ : values_[i - 1];
        layers_[i]->backward(src, values_[i], grad_, i == 0 ? nullptr : &grad_next_);
        std::swap(grad_, grad_next_);
    }
}

void IntNet::update(const UpdateRule& rule) {
    for (const auto& layer : layers_) layer->update(rule);
}

std::int64_t IntNet::train_step(const Int8Tensor& images, std::span<const int> labels,
                                const UpdateRule& rule, std::uint64_t seed,
                                std::uint64_t iteration) {
    const Int8Tensor& logits = forward(images);
    const std::int64_t correct = count_correct(logits, labels);
    // Iterations below 2^32 give every step its own stream of random bits.
    cross_entropy_gradient(logits, labels, seed ^ (iteration << 32), loss_grad_);
    backward(loss_grad_);
    update(rule);
    return correct;
}

const Int8Tensor& IntNet::output() const {
    if (values_.empty()) throw Error("integer net: no layers");
    return values_.back();
}

}  // namespace dfp::integer
