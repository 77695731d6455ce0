// Image folders: a training set and a test set of JPEG files sorted into one folder per class,
// the layout of ImageNet and of most exported datasets:
//   DIR/train/CLASS/*.jpg    DIR/test/CLASS/*.jpg (or DIR/val/CLASS/*.jpg)
#pragma once

#include <cstdint>
#include <string>

#include "data/classification.hpp"

namespace dfp::data {

// The ImageNet convention: shorter side to 256, centre crop 224 x 224.
inline constexpr std::int64_t kFolderResize = 256, kFolderCrop = 224;

// Reads every JPEG of DIR/train and DIR/test (DIR/val when there is no DIR/test) into memory as
// (N, crop, crop, 3) FP32 pixels 0..255: each image scaled so its shorter side is `resize`, then
// its centre crop x crop square (resize_center_crop in data/jpeg.hpp); greyscale becomes RGB.
// Class i is the i-th class folder of DIR/train in sorted (byte) order; the test set uses the
// same mapping and may hold a subset of the classes. Names starting with '.' are skipped; every
// other entry must be a class folder (in train/, test/) or a JPEG file (in a class folder).
// Samples are stored round-robin over the classes (the first image of each class, then the
// second, ...), so that truncate() keeps every class. Decoding runs on the OpenMP threads.
// Throws dfp::Error naming the folder or file at fault: a missing folder, no classes, a class
// without images, a test class unknown to train/, a file that is not a valid JPEG, or a
// dataset larger than this machine's memory.
TrainTest read_image_folder(const std::string& dir, std::int64_t resize = kFolderResize,
                            std::int64_t crop = kFolderCrop);

}  // namespace dfp::data
