// Softmax cross-entropy: the loss of classification networks, kept outside the Net so that the
// Net's output stays the logits (for evaluation and for other losses).
#pragma once

#include <cstdint>
#include <span>

#include "nn/tensor.hpp"

namespace dfp::nn {

// logits is {N, ...}: K = numel / N classes per sample; labels (N) in [0, K). Returns the mean
// over the batch of -log softmax(logits)[label] and sets dlogits (logits' shape) to its gradient,
// (softmax - onehot) / N. Throws dfp::Error on a label out of range or a batch size mismatch.
float softmax_cross_entropy(const Tensor& logits, std::span<const int> labels, Tensor& dlogits);

// How many samples of logits {N, ...} have their largest logit at the label (first on ties).
std::int64_t count_correct(const Tensor& logits, std::span<const int> labels);

}  // namespace dfp::nn
