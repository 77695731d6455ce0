// Data-parallel gradient averaging: a train::GradientHook that, after each rank's backward,
// leaves every rank with the same gradients, the average over ranks, in FP32 or DFP16 on the wire
// (dist/reduce.hpp has the arithmetic and its bound).
//
// Overlap: a layer's tensors start their exchange as soon as backward has finished them, and the
// exchanges in flight advance between the backward passes of the earlier layers (MPI progresses
// nonblocking collectives when polled). Each tensor has its own MPI channel, so that its steps
// (exponent agreement, alltoall, allgather) need no fixed order against the other tensors'.
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dist/communicator.hpp"
#include "nn/net.hpp"
#include "train/train_step.hpp"

namespace dfp::dist {

enum class GradExchange { fp32, dfp16 };
// Throws dfp::Error naming --grad-exchange.
GradExchange parse_grad_exchange(std::string_view name);
const char* grad_exchange_name(GradExchange kind);

class GradientExchange final : public train::GradientHook {
  public:
    // net and comm must outlive the exchange; net's layers and parameters must not change.
    GradientExchange(Communicator& comm, nn::Net& net, GradExchange kind);

    // Before each step: this rank holds `local` of the step's `global` samples. Its gradients (a
    // mean over its samples) are weighted by local x N / global, so that the average over the
    // ranks is the mean over the global batch even when the last batch splits unevenly (a rank
    // with no samples contributes zeros).
    void begin_step(std::int64_t local, std::int64_t global);
    float weight() const { return weight_; }
    void layer_done(nn::Layer& layer) override;
    // Exchanges what backward has not started (all of it on a rank without samples), and waits.
    void finish() override;

    // Bytes this rank sent in the last step: alltoall and allgather blocks for the other ranks,
    // plus 4 per tensor for the DFP16 exponent agreement.
    std::uint64_t bytes_sent() const { return bytes_sent_; }

  private:
    enum class Phase { idle, agree_exponent, alltoall, allgather, done };
    struct Slot {
        nn::Param* param = nullptr;
        Communicator::Channel channel = 0;
        std::size_t chunk = 0;  // padded size / ranks
        Phase phase = Phase::idle;
        Communicator::Request request;
        std::uint32_t max_bits = 0;
        int exponent = 0;
        std::vector<float> f32_send, f32_recv;
        std::vector<std::int16_t> s16_send, s16_recv;
    };
    void start(Slot& slot);
    // Runs the slot's next phase once its request has completed.
    void advance(Slot& slot);
    void poll();

    Communicator& comm_;
    GradExchange kind_;
    std::vector<Slot> slots_;  // in backward order: the order every rank starts them
    std::unordered_map<const nn::Param*, std::size_t> slot_of_;
    float weight_ = 1.0f;
    std::uint64_t bytes_sent_ = 0;
};

}  // namespace dfp::dist
