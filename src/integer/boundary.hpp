// Where FP32 meets the integer engine, outside the training step (so this file may use floating
// point; integer/net.hpp's step may not): an IntNet built from an nn::Net's architecture and
// initial FP32 weights, input images quantized to int8, and the reports (loss, accuracy) computed
// from int8 logits. NITI likewise initialises in floating point and quantizes once.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "data/classification.hpp"
#include "integer/net.hpp"
#include "nn/net.hpp"
#include "train/evaluate.hpp"

namespace dfp::integer {

// The integer twin of `net`: a chain of bias-free conv2d, linear, ReLU and unpadded max-pool
// layers (any other layer, a bias, a branch or a padded or ceil-mode pool throws dfp::Error naming
// `model` and the layer). Weights are net's current FP32 values quantized to int8 with one
// exponent per tensor (DFP8, round to nearest even): the exponent they keep for the whole run.
IntNet from_net(nn::Net& net, const std::string& model);

// images (N, H, W, C) to int8 with one exponent (DFP8 per tensor, round to nearest even).
void quantize_images(const nn::Tensor& images, Int8Tensor& dst);
// FP32 values of an Int8Tensor (exact), e.g. the logits for a report.
nn::Tensor dequantize(const Int8Tensor& src);

// The mean softmax cross-entropy of int8 logits (for logs only: training never reads it).
double mean_loss(const Int8Tensor& logits, std::span<const int> labels);

// Integer inference over all of `data`, `batch` samples at a time; loss and top-1/top-5 from the
// logits: the exact INT32 scores when the last layer is linear (int8 logits tie often: ties count
// against the label, which would understate what the network learned), else the int8 logits.
train::Evaluation evaluate(IntNet& net, const data::ImageDataset& data, std::int64_t batch);

}  // namespace dfp::integer
