// Image classification datasets held in memory as NHWC FP32, and the order in which an epoch
// visits them. Fashion-MNIST (and MNIST) come as IDX files: images (N, H, W) u8, labels (N) u8.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/aligned.hpp"
#include "format/format.hpp"

namespace dfp::data {

struct ImageDataset {
    std::int64_t height = 0, width = 0, channels = 0;
    std::int64_t classes = 0;   // labels are 0..classes-1
    std::vector<float> images;  // (N, H, W, C)
    std::vector<int> labels;    // (N)
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
// CIFAR-10 (data_batch_1..5.bin, test_batch.bin: records of 1 label byte + 3072 pixel bytes) or
// CIFAR-100 (train.bin, test.bin: coarse label byte, fine label byte, 3072 pixel bytes; the
// fine labels are used) in `dir`, whichever it holds. Pixels are stored as three 32x32 planes
// (R, G, B) and become NHWC here. Throws dfp::Error naming a missing or truncated file.
TrainTest read_cifar_folder(const std::string& dir);

// Learnable synthetic data of any shape, for throughput runs and tests: each class has a fixed
// random prototype image and every sample is its class's prototype plus noise, both from the
// counter-based RNG (reproducible). `train` and `test` samples.
TrainTest make_synthetic(std::int64_t channels, std::int64_t height, std::int64_t width,
                         std::int64_t classes, std::int64_t train, std::int64_t test);

// A data spec of the command line: "fashion-mnist" (kFashionMnistDir), "idx:DIR", "cifar:DIR",
// "folder:DIR" (JPEG image folders, data/image_folder.hpp: shorter side 256, centre crop 224),
// "folder:DIR:SIZE" (shorter side SIZE, centre crop SIZE x SIZE) or "synthetic:CxHxW:CLASSES"
// (up to 4096 training samples, fewer for large images, and a quarter as many test samples).
TrainTest read_dataset(const std::string& spec);

// Standardises both sets with the mean and standard deviation of the training images (one
// value per channel), so the test set sees exactly the transform training saw.
void standardize(TrainTest& data);

// Keeps the first `count` samples (count >= size keeps all).
void truncate(ImageDataset& data, std::int64_t count);

// The visiting order of one epoch: a permutation of 0..n-1 that depends only on (seed, epoch).
std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

// Copies the samples `indices` into images (B, H, W, C) and labels (B).
void gather_batch(const ImageDataset& data, std::span<const std::int64_t> indices,
                  UninitAlignedVector<float>& images, std::vector<int>& labels);

}  // namespace dfp::data
