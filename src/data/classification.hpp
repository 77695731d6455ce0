// Image classification datasets held in memory as NHWC FP32, and the order in which an epoch
// visits them. Fashion-MNIST (and MNIST) come as IDX files: images (N, H, W) u8, labels (N) u8.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/format.hpp"

namespace dfp::data {

struct ImageDataset {
    std::int64_t height = 0, width = 0, channels = 0;
    std::int64_t classes = 0;    // labels are 0..classes-1
    std::vector<float> images;   // (N, H, W, C)
    std::vector<int> labels;     // (N)
    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
    std::int64_t image_numel() const { return height * width * channels; }
};

// Reads an IDX image file (N, H, W) and its IDX label file (N); pixel values as stored (0..255).
// Throws dfp::Error naming the file when the counts differ or a label is outside 0..classes-1.
ImageDataset read_idx_classification(const std::string& images_path, const std::string& labels_path,
                                     std::int64_t classes);

struct TrainTest {
    ImageDataset train, test;
};
// The four standard MNIST-style files in `dir`: train-images-idx3-ubyte.gz,
// train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (each also
// found without .gz). Throws dfp::Error naming the first missing file.
TrainTest read_idx_folder(const std::string& dir, std::int64_t classes = 10);

// Debian's dataset-fashion-mnist installs the real Fashion-MNIST here.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
// A data spec of the command line: "fashion-mnist" (kFashionMnistDir) or "idx:DIR".
TrainTest read_dataset(const std::string& spec);

// Standardises both sets with the mean and standard deviation of the training images (one
// value per channel), so the test set sees exactly the transform training saw.
void standardize(TrainTest& data);

// Keeps the first `count` samples (count >= size keeps all).
void truncate(ImageDataset& data, std::int64_t count);

// The visiting order of one epoch: a permutation of 0..n-1 that depends only on (seed, epoch).
std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

// Copies the samples `indices` into images (B, H, W, C) and labels (B).
void gather_batch(const ImageDataset& data, std::span<const std::int64_t> indices, std::vector<float>& images,
                  std::vector<int>& labels);

}  // namespace dfp::data
