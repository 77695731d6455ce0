#include "data/augment.hpp"

#include <algorithm>
#include <cstring>

#include "format/rng.hpp"

namespace dfp::data {
namespace {

// Keeps augmentation's random bits apart from the other users of the run's seed (stochastic
// rounding draws random_bits(seed, element)).
constexpr std::uint64_t kAugmentStream = 0x6175676d656e7431;  // "augment1"
// The counter of a draw packs (epoch, sample, draw): 24 bits of epoch, 38 of sample, 2 of draw,
// far beyond any dataset held in memory.
constexpr int kSampleShift = 2, kEpochShift = 40;
enum Draw : std::uint64_t { kDrawY = 0, kDrawX = 1, kDrawFlip = 2 };

}  // namespace

AugmentDraw augment_draw(const AugmentOptions& options, std::uint64_t seed, std::int64_t epoch,
                         std::int64_t sample) {
    const auto bits = [&](Draw draw) {
        const std::uint64_t counter = (static_cast<std::uint64_t>(epoch) << kEpochShift) |
                                      (static_cast<std::uint64_t>(sample) << kSampleShift) | draw;
        return random_bits(seed ^ kAugmentStream, counter);
    };
    AugmentDraw d;
    const auto offsets = static_cast<std::uint32_t>(2 * options.crop_pad + 1);
    if (options.crop_pad > 0) {
        d.dy = bits(kDrawY) % offsets;
        d.dx = bits(kDrawX) % offsets;
    }
    d.flip = options.flip && (bits(kDrawFlip) & 1) != 0;
    return d;
}

void augment_image(const float* src, float* dst, std::int64_t height, std::int64_t width,
                   std::int64_t channels, const AugmentOptions& options, std::uint64_t seed,
                   std::int64_t epoch, std::int64_t sample) {
    const AugmentDraw d = augment_draw(options, seed, epoch, sample);
    // Source row/column of output (y, x): shifted by the window offset less the padding.
    const std::int64_t sy = d.dy - options.crop_pad, sx = d.dx - options.crop_pad;
    for (std::int64_t y = 0; y < height; ++y) {
        float* row = dst + y * width * channels;
        const std::int64_t ys = y + sy;
        if (ys < 0 || ys >= height) {
            std::fill(row, row + width * channels, 0.0f);
            continue;
        }
        for (std::int64_t x = 0; x < width; ++x) {
            const std::int64_t xs = (d.flip ? width - 1 - x : x) + sx;
            float* px = row + x * channels;
            if (xs < 0 || xs >= width)
                std::fill(px, px + channels, 0.0f);
            else
                std::memcpy(px, src + (ys * width + xs) * channels, channels * sizeof(float));
        }
    }
}

void augment_batch(std::span<float> images, std::int64_t height, std::int64_t width,
                   std::int64_t channels, std::span<const std::int64_t> samples,
                   const AugmentOptions& options, std::uint64_t seed, std::int64_t epoch) {
    if (!options.enabled()) return;
    const std::int64_t numel = height * width * channels;
    std::vector<float> src(static_cast<std::size_t>(numel));
    for (std::size_t b = 0; b < samples.size(); ++b) {
        float* image = &images[b * numel];
        std::copy(image, image + numel, src.begin());
        augment_image(src.data(), image, height, width, channels, options, seed, epoch, samples[b]);
    }
}

}  // namespace dfp::data
