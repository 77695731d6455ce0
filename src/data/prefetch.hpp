// Background prefetch of training batches: a thread gathers (and augments) the next batches of
// an epoch while the current step trains, so the step never waits on input. The batches are
// exactly those of prepare_batch in order: prefetching changes when the work is done, never
// what it computes (tested against the direct path).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "data/augment.hpp"
#include "data/classification.hpp"

namespace dfp::data {

// The direct path: gather_batch of `indices`, then augment_batch with the draws of `epoch`.
void prepare_batch(const ImageDataset& data, std::span<const std::int64_t> indices,
                   const AugmentOptions& augment, std::uint64_t seed, std::int64_t epoch,
                   UninitAlignedVector<float>& images, std::vector<int>& labels);

// The batches of one epoch: samples order[0 .. batch-1], order[batch .. 2*batch-1], ... (the last
// batch may be shorter). With `background`, one thread prepares up to two batches ahead of the
// caller (one waiting to be taken, one being filled); without it, next() prepares each batch
// itself. `data` must outlive the prefetcher.
class BatchPrefetcher {
  public:
    BatchPrefetcher(const ImageDataset& data, std::vector<std::int64_t> order, std::int64_t batch,
                    const AugmentOptions& augment, std::uint64_t seed, std::int64_t epoch,
                    bool background = true);
    ~BatchPrefetcher();
    BatchPrefetcher(const BatchPrefetcher&) = delete;
    BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

    // The next batch into images (B, H, W, C) and labels (B); false after the last one. The
    // vectors' old buffers are reused for later batches (no allocation once sizes settle). An
    // error of the thread is rethrown here, after the batches before it.
    bool next(UninitAlignedVector<float>& images, std::vector<int>& labels);

  private:
    std::span<const std::int64_t> batch_indices(std::int64_t k) const;
    void run();  // the thread

    const ImageDataset& data_;
    const std::vector<std::int64_t> order_;
    const std::int64_t batch_, batches_;
    const AugmentOptions augment_;
    const std::uint64_t seed_;
    const std::int64_t epoch_;
    std::int64_t taken_ = 0;  // batches handed to the caller

    std::mutex mutex_;
    std::condition_variable changed_;
    bool full_ = false;  // slot_* holds the next batch
    bool done_ = false;  // the thread has filled its last batch, or failed
    bool stop_ = false;  // the destructor asks the thread to end
    std::exception_ptr error_;
    UninitAlignedVector<float> slot_images_;
    std::vector<int> slot_labels_;
    std::thread thread_;  // last: started once everything above is ready
};

}  // namespace dfp::data
