#include "train/evaluate.hpp"

#include <algorithm>

#include "nn/loss.hpp"

namespace dfp::train {

nn::Tensor image_batch(const data::ImageDataset& data, std::span<const std::int64_t> indices,
                       std::vector<int>& labels) {
    nn::Tensor x({indices.size(), static_cast<std::size_t>(data.height),
                  static_cast<std::size_t>(data.width), static_cast<std::size_t>(data.channels)});
    data::gather_batch(data, indices, x.data, labels);
    return x;
}

std::int64_t count_top_k(const nn::Tensor& logits, std::span<const int> labels, std::int64_t k) {
    const auto classes = static_cast<std::int64_t>(logits.shape[1]);
    std::int64_t hits = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const float* z = logits.data.data() + i * classes;
        // Classes ranked above the label: every other class whose logit is not strictly below
        // the label's (a tie, or a NaN, counts against the label: int8 logits often tie, and
        // all-equal logits must not score 100%).
        std::int64_t above = 0;
        for (std::int64_t c = 0; c < classes; ++c) above += c != labels[i] && !(z[c] < z[labels[i]]);
        hits += above < k;
    }
    return hits;
}

Evaluation evaluate(nn::Net& net, const data::ImageDataset& data, std::int64_t batch) {
    std::vector<int> labels;
    std::vector<std::int64_t> indices;
    nn::Tensor diff_logits;
    double loss_sum = 0;
    std::int64_t top1 = 0, top5 = 0;
    for (std::int64_t first = 0; first < data.size(); first += batch) {
        const std::int64_t b = std::min(batch, data.size() - first);
        indices.resize(static_cast<std::size_t>(b));
        for (std::int64_t i = 0; i < b; ++i) indices[i] = first + i;
        const nn::Tensor& logits =
            net.forward(image_batch(data, indices, labels), {nn::Mode::eval, 0});
        loss_sum += static_cast<double>(nn::softmax_cross_entropy(logits, labels, diff_logits)) *
                    static_cast<double>(b);
        top1 += count_top_k(logits, labels, 1);
        top5 += count_top_k(logits, labels, 5);
    }
    const auto n = static_cast<double>(data.size());
    return {loss_sum / n, static_cast<double>(top1) / n, static_cast<double>(top5) / n};
}

}  // namespace dfp::train
