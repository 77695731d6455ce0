#include "dist/data_parallel.hpp"

#include <string>

#include "base/error.hpp"
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
