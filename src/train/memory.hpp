// Whether a batch fits in memory, checked before training starts: a batch too large should be one
// clear error naming --batch, not an allocation failure or the kernel's OOM killer minutes into
// the run (Linux overcommits, so a large allocation often succeeds and fails only when touched).
#pragma once

#include <cstdint>
#include <optional>

#include "models/image_input.hpp"
#include "nn/net.hpp"

namespace dfp::train {

// A lower bound of the bytes one training image needs: every node's FP32 activation, which
// backward reads, and as much again for the gradients (fewer are alive at once, but the largest
// dominate). Weights, optimizer state and DFP16 copies come on top.
std::int64_t training_bytes_per_image(nn::Net& net, const models::ImageInput& input);

// MemAvailable of /proc/meminfo in bytes, or nothing where it cannot be read.
std::optional<std::int64_t> available_memory();

// Throws dfp::Error naming --batch (its value `batch`) when a batch of `images` images (the batch,
// or the whole dataset when that is smaller) needs more than `available` bytes.
void check_batch_fits(nn::Net& net, const models::ImageInput& input, std::int64_t batch,
                      std::int64_t images, std::optional<std::int64_t> available);

}  // namespace dfp::train
