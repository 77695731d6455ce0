// The rest of synchronous data-parallel SGD around the gradient exchange: which samples each rank
// trains on, and the check that every rank still holds the same weights.
#pragma once

#include <cstdint>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/grad_exchange.hpp"
#include "nn/net.hpp"

namespace dfp::dist {

// Rank `rank`'s share of a global batch of `batch` samples: positions [begin, end) of it, so that
// the ranks' shares are in rank order and differ by at most one sample.
std::int64_t shard_begin(std::int64_t batch, int ranks, int rank);
std::int64_t shard_size(std::int64_t batch, int ranks, int rank);

// The samples this rank trains on in an epoch of `order` (every rank has the same global order):
// its share of each global batch of `batch` samples (the last one may be shorter), one after the
// other. With batch = ranks x B, cutting this into batches of B gives the rank's local batches.
std::vector<std::int64_t> shard_order(const std::vector<std::int64_t>& order, std::int64_t batch,
                                      int ranks, int rank);

// Synchronised batch normalisation: every BatchNorm2d of net normalises with the statistics of
// the global batch, summed over the ranks (blocking allreduces, with the timeout). Sums of
// gradient terms are weighted like the gradients (exchange.weight()), so that uneven shares of a
// batch give the global batch's values too. Every rank must have samples in every step
// (check_batches_for_sync_bn): a rank without any would not run the layers' sums.
void synchronise_batch_norm(Communicator& comm, nn::Net& net, const GradientExchange& exchange);
// Throws dfp::Error naming --sync-bn when the last batch of an epoch of `samples` leaves a rank
// without samples.
void check_batches_for_sync_bn(std::int64_t samples, std::int64_t batch, int ranks);

// CRC-32 of every parameter's values, compared across ranks (an allreduce of the maximum of the
// CRC and of its complement). Throws dfp::Error naming the iteration when they differ.
void check_same_weights(Communicator& comm, const std::vector<nn::Param*>& params,
                        std::int64_t iteration);

}  // namespace dfp::dist
