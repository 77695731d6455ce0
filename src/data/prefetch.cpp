#include "data/prefetch.hpp"

#include <algorithm>
#include <utility>

namespace dfp::data {

void prepare_batch(const ImageDataset& data, std::span<const std::int64_t> indices,
                   const AugmentOptions& augment, std::uint64_t seed, std::int64_t epoch,
                   UninitAlignedVector<float>& images, std::vector<int>& labels) {
    gather_batch(data, indices, images, labels);
    augment_batch(images, data.height, data.width, data.channels, indices, augment, seed, epoch);
}

BatchPrefetcher::BatchPrefetcher(const ImageDataset& data, std::vector<std::int64_t> order,
                                 std::int64_t batch, const AugmentOptions& augment,
                                 std::uint64_t seed, std::int64_t epoch, bool background)
    : data_(data),
      order_(std::move(order)),
      batch_(std::max<std::int64_t>(1, batch)),
      batches_((static_cast<std::int64_t>(order_.size()) + batch_ - 1) / batch_),
      augment_(augment),
      seed_(seed),
      epoch_(epoch) {
    if (background) thread_ = std::thread([this] { run(); });
}

BatchPrefetcher::~BatchPrefetcher() {
    if (!thread_.joinable()) return;
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

std::span<const std::int64_t> BatchPrefetcher::batch_indices(std::int64_t k) const {
    const std::int64_t first = k * batch_;
    return std::span(order_).subspan(
        first, std::min<std::int64_t>(batch_, static_cast<std::int64_t>(order_.size()) - first));
}

void BatchPrefetcher::run() {
    UninitAlignedVector<float> images;
    std::vector<int> labels;
    try {
        for (std::int64_t k = 0; k < batches_; ++k) {
            // Filled outside the lock: this is the work that overlaps the caller's step.
            prepare_batch(data_, batch_indices(k), augment_, seed_, epoch_, images, labels);
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return !full_ || stop_; });
            if (stop_) return;
            // The slot's old buffers (the caller's previous batch) come back for reuse.
            std::swap(slot_images_, images);
            std::swap(slot_labels_, labels);
            full_ = true;
            changed_.notify_all();
        }
    } catch (...) {
        const std::lock_guard lock(mutex_);
        error_ = std::current_exception();
    }
    {
        const std::lock_guard lock(mutex_);
        done_ = true;
    }
    changed_.notify_all();
}

bool BatchPrefetcher::next(UninitAlignedVector<float>& images, std::vector<int>& labels) {
    if (taken_ >= batches_) return false;
    if (!thread_.joinable()) {
        prepare_batch(data_, batch_indices(taken_), augment_, seed_, epoch_, images, labels);
        ++taken_;
        return true;
    }
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return full_ || done_; });
    if (!full_) {
        if (error_) std::rethrow_exception(error_);
        return false;  // not reached: the thread fills every batch unless it fails
    }
    std::swap(slot_images_, images);
    std::swap(slot_labels_, labels);
    full_ = false;
    ++taken_;
    lock.unlock();
    changed_.notify_all();
    return true;
}

}  // namespace dfp::data
