// Evaluation of a classification network on a dataset, and the batches both training and
// evaluation feed it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "data/classification.hpp"
#include "nn/net.hpp"

namespace dfp::train {

// The samples `indices` of `data` as an NHWC batch, their labels into `labels`.
nn::Tensor image_batch(const data::ImageDataset& data, std::span<const std::int64_t> indices,
                       std::vector<int>& labels);

// Samples whose label is among the k largest logits (ties count against the label).
std::int64_t count_top_k(const nn::Tensor& logits, std::span<const int> labels, std::int64_t k);

struct Evaluation {
    double loss;        // mean softmax cross-entropy
    double top1, top5;  // fractions in 0..1
};

// Runs `net` in eval mode over all of `data`, `batch` samples at a time.
Evaluation evaluate(nn::Net& net, const data::ImageDataset& data, std::int64_t batch);

}  // namespace dfp::train
