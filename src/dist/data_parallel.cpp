#include "dist/data_parallel.hpp"

#include <string>

#include "base/error.hpp"
#include "nn/norm.hpp"
#include "train/checkpoint_file.hpp"

namespace dfp::dist {

std::int64_t shard_begin(std::int64_t batch, int ranks, int rank) {
    return batch * rank / ranks;
}

std::int64_t shard_size(std::int64_t batch, int ranks, int rank) {
    return shard_begin(batch, ranks, rank + 1) - shard_begin(batch, ranks, rank);
}

std::vector<std::int64_t> shard_order(const std::vector<std::int64_t>& order, std::int64_t batch,
                                      int ranks, int rank) {
    std::vector<std::int64_t> shard;
    const auto n = static_cast<std::int64_t>(order.size());
    for (std::int64_t first = 0; first < n; first += batch) {
        const std::int64_t b = std::min(batch, n - first);
        shard.insert(shard.end(), order.begin() + first + shard_begin(b, ranks, rank),
                     order.begin() + first + shard_begin(b, ranks, rank + 1));
    }
    return shard;
}

void synchronise_batch_norm(Communicator& comm, nn::Net& net, const GradientExchange& exchange) {
    for (int node = 1; node < net.nodes(); ++node) {
        auto* bn = dynamic_cast<nn::BatchNorm2d*>(&net.layer(node));
        if (!bn) continue;
        const std::string what = "synchronised batch norm of '" + bn->name() + "'";
        bn->set_sum_across_processes(
            [&comm, &exchange, what](std::vector<double>& sums, bool gradients) {
                // This rank's gradient terms are those of a mean over its share: weighted, summed,
                // and brought back to its own scale (weight > 0: every rank has samples).
                const double weight = gradients ? exchange.weight() : 1.0;
                for (double& v : sums) v *= weight;
                comm.allreduce_wait(0, sums.data(), static_cast<int>(sums.size()), MPI_DOUBLE,
                                    MPI_SUM, what);
                for (double& v : sums) v /= weight;
            });
    }
}

void check_batches_for_sync_bn(std::int64_t samples, std::int64_t batch, int ranks) {
    const std::int64_t last = samples % batch;
    if (last != 0 && last < ranks)
        throw Error("--sync-bn: the last batch of each epoch holds " + std::to_string(last) +
                    " sample(s) for " + std::to_string(ranks) +
                    " ranks, and every rank needs samples in every step (change --batch or "
                    "--train-limit)");
}

void check_same_weights(Communicator& comm, const std::vector<nn::Param*>& params,
                        std::int64_t iteration) {
    std::vector<std::uint32_t> crcs;
    for (const nn::Param* p : params)
        crcs.push_back(train::crc32_of(reinterpret_cast<const unsigned char*>(p->value.data()),
                                       p->value.size() * sizeof(float)));
    const std::uint32_t crc = train::crc32_of(reinterpret_cast<const unsigned char*>(crcs.data()),
                                              crcs.size() * sizeof(std::uint32_t));
    // max(crc) and max(~crc) = ~min(crc): equal everywhere iff max == min.
    std::uint32_t both[2] = {crc, ~crc};
    comm.allreduce_wait(0, both, 2, MPI_UINT32_T, MPI_MAX, "weight check");
    if (both[0] != static_cast<std::uint32_t>(~both[1]))
        throw Error("rank " + std::to_string(comm.rank()) + ": after iteration " +
                    std::to_string(iteration) +
                    " the ranks' weights differ (CRC-32 of the parameters from " +
                    std::to_string(~both[1]) + " to " + std::to_string(both[0]) + ")");
}

}  // namespace dfp::dist
