// Augmentation of training batches (random crop with padding, flip) and the background
// prefetcher.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>
#include <span>
#include <vector>

#include "data/augment.hpp"
#include "data/classification.hpp"
#include "data/prefetch.hpp"

namespace dfp {
namespace {

// ---- augmentation ----

TEST(Augment, FlipMirrorsAndCropShiftsWithZeroPadding) {
    // A 2 x 3 single-channel image: rows 1 2 3 and 4 5 6.
    const std::vector<float> src{1, 2, 3, 4, 5, 6};
    std::vector<float> dst(6);
    data::AugmentOptions flip{0, true};
    data::AugmentOptions crop{1, false};
    std::set<std::vector<float>> flips, crops;
    for (std::int64_t sample = 0; sample < 200; ++sample) {
        data::augment_image(src.data(), dst.data(), 2, 3, 1, flip, 7, 0, sample);
        const data::AugmentDraw fd = data::augment_draw(flip, 7, 0, sample);
        EXPECT_EQ(dst, fd.flip ? (std::vector<float>{3, 2, 1, 6, 5, 4}) : src);
        flips.insert(dst);

        data::augment_image(src.data(), dst.data(), 2, 3, 1, crop, 7, 0, sample);
        const data::AugmentDraw cd = data::augment_draw(crop, 7, 0, sample);
        ASSERT_TRUE(cd.dy >= 0 && cd.dy <= 2 && cd.dx >= 0 && cd.dx <= 2 && !cd.flip);
        for (std::int64_t y = 0; y < 2; ++y)
            for (std::int64_t x = 0; x < 3; ++x) {
                const std::int64_t ys = y + cd.dy - 1, xs = x + cd.dx - 1;
                const float want = ys >= 0 && ys < 2 && xs >= 0 && xs < 3 ? src[ys * 3 + xs] : 0;
                EXPECT_EQ(dst[y * 3 + x], want) << "dy " << cd.dy << " dx " << cd.dx;
            }
        crops.insert(dst);
    }
    EXPECT_EQ(flips.size(), 2u);  // both outcomes happen
    EXPECT_EQ(crops.size(), 9u);  // all 3 x 3 offsets happen
    // dy = dx = pad is the identity window.
    const std::vector<float> shifted_down{0, 0, 0, 1, 2, 3};
    EXPECT_TRUE(crops.count(src) == 1 && crops.count(shifted_down) == 1);
}

TEST(Augment, DrawsDependOnSeedEpochAndSampleOnly) {
    const data::AugmentOptions o{4, true};
    const auto draws = [&](std::uint64_t seed, std::int64_t epoch) {
        std::vector<std::int64_t> v;
        for (std::int64_t s = 0; s < 64; ++s) {
            const data::AugmentDraw d = data::augment_draw(o, seed, epoch, s);
            v.insert(v.end(), {d.dy, d.dx, d.flip});
        }
        return v;
    };
    EXPECT_EQ(draws(1, 0), draws(1, 0));
    EXPECT_NE(draws(1, 0), draws(1, 1));
    EXPECT_NE(draws(1, 0), draws(2, 0));
    // A batch augments each sample by its dataset index, whatever its position in the batch.
    const data::ImageDataset d = data::make_synthetic(3, 6, 5, 2, 10, 1).train;
    const std::vector<std::int64_t> a{3, 7}, b{7, 3};
    UninitAlignedVector<float> ia, ib;
    std::vector<int> la, lb;
    data::prepare_batch(d, a, o, 5, 2, ia, la);
    data::prepare_batch(d, b, o, 5, 2, ib, lb);
    const auto n = static_cast<std::ptrdiff_t>(d.image_numel());
    EXPECT_TRUE(std::equal(ia.begin(), ia.begin() + n, ib.begin() + n));
    EXPECT_TRUE(std::equal(ia.begin() + n, ia.end(), ib.begin()));
    // Off: the gathered samples unchanged.
    UninitAlignedVector<float> plain;
    data::prepare_batch(d, a, {}, 5, 2, plain, la);
    EXPECT_TRUE(std::equal(plain.begin(), plain.begin() + n, d.images.begin() + 3 * n));
}

// ---- prefetch ----

TEST(Prefetch, BackgroundBatchesEqualDirectGathering) {
    const data::ImageDataset d = data::make_synthetic(3, 8, 8, 4, 103, 1).train;
    const data::AugmentOptions augment{2, true};
    constexpr std::int64_t kBatch = 10, kEpoch = 3;
    constexpr std::uint64_t kSeed = 11;
    const std::vector<std::int64_t> order = data::epoch_order(d.size(), kSeed, kEpoch);
    for (const bool background : {true, false}) {
        data::BatchPrefetcher batches(d, order, kBatch, augment, kSeed, kEpoch, background);
        UninitAlignedVector<float> images, want_images;
        std::vector<int> labels, want_labels;
        std::int64_t count = 0;
        for (std::int64_t first = 0; first < d.size(); first += kBatch, ++count) {
            const std::int64_t b = std::min(kBatch, d.size() - first);
            ASSERT_TRUE(batches.next(images, labels));
            data::prepare_batch(d, std::span(order).subspan(first, b), augment, kSeed, kEpoch,
                                want_images, want_labels);
            EXPECT_EQ(images, want_images) << "batch " << count;
            EXPECT_EQ(labels, want_labels) << "batch " << count;
        }
        EXPECT_EQ(count, 11);
        EXPECT_FALSE(batches.next(images, labels));
        EXPECT_FALSE(batches.next(images, labels));
        std::printf("prefetch %-10s 11 batches equal to direct gathering: PASS\n",
                    background ? "background" : "inline");
    }
}

TEST(Prefetch, StoppingEarlyEndsTheThread) {
    const data::ImageDataset d = data::make_synthetic(1, 4, 4, 2, 50, 1).train;
    for (int taken = 0; taken < 3; ++taken) {
        data::BatchPrefetcher batches(d, data::epoch_order(d.size(), 1, 0), 4, {}, 1, 0);
        UninitAlignedVector<float> images;
        std::vector<int> labels;
        for (int i = 0; i < taken; ++i) ASSERT_TRUE(batches.next(images, labels));
    }  // the destructor must join the waiting thread, not hang
}

}  // namespace
}  // namespace dfp
