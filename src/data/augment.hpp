// Data augmentation of training batches: random crop with zero padding and random horizontal
// flip. The draws of a sample depend only on (seed, epoch, sample index), never on the batch
// size, the batch's position or a thread, so a run (and a resumed run) is reproducible.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace dfp::data {

struct AugmentOptions {
    // Random crop: the image is padded with `crop_pad` zeros on every side and an H x W window
    // is cut at a random offset in 0..2*crop_pad along each axis (the CIFAR recipe: 4). Zero is
    // the mean colour here: augmentation runs on standardised data.
    std::int64_t crop_pad = 0;
    bool flip = false;  // mirror left-right with probability 1/2
    bool enabled() const { return crop_pad > 0 || flip; }
};

// What augment_image does to one sample: window offset (dy, dx) in 0..2*crop_pad, and the flip.
struct AugmentDraw {
    std::int64_t dy = 0, dx = 0;
    bool flip = false;
};
AugmentDraw augment_draw(const AugmentOptions& options, std::uint64_t seed, std::int64_t epoch,
                         std::int64_t sample);

// Writes the augmented (H, W, C) image `src` to `dst` (distinct buffers): dst(y, x) =
// src(y + dy - pad, x' + dx - pad) with x' = W-1-x when flipped and x otherwise (zero outside
// src), with the draw of `sample` (its index in the dataset) in `epoch`.
void augment_image(const float* src, float* dst, std::int64_t height, std::int64_t width,
                   std::int64_t channels, const AugmentOptions& options, std::uint64_t seed,
                   std::int64_t epoch, std::int64_t sample);

// Augments a gathered batch (B, H, W, C) in place; `samples` are the dataset indices of its
// samples. Nothing happens when options are not enabled.
void augment_batch(std::span<float> images, std::int64_t height, std::int64_t width,
                   std::int64_t channels, std::span<const std::int64_t> samples,
                   const AugmentOptions& options, std::uint64_t seed, std::int64_t epoch);

}  // namespace dfp::data
