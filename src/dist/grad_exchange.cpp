#include "dist/grad_exchange.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "base/error.hpp"
#include "dist/reduce.hpp"
#include "format/quantize_kernels.hpp"

namespace dfp::dist {

GradExchange parse_grad_exchange(std::string_view name) {
    if (name == "fp32") return GradExchange::fp32;
    if (name == "dfp16") return GradExchange::dfp16;
    throw Error("--grad-exchange: expected fp32 or dfp16, got '" + std::string(name) + "'");
}

const char* grad_exchange_name(GradExchange kind) {
    return kind == GradExchange::fp32 ? "fp32" : "dfp16";
}

GradientExchange::GradientExchange(Communicator& comm, nn::Net& net, GradExchange kind)
    : comm_(comm), kind_(kind) {
    if (kind == GradExchange::dfp16 && comm.size() > kMaxRanksDfp16)
        throw Error("--grad-exchange dfp16: at most " + std::to_string(kMaxRanksDfp16) +
                    " ranks (INT32 sums of int16 mantissas), got " + std::to_string(comm.size()));
    const auto ranks = static_cast<std::size_t>(comm.size());
    for (int node = net.output(); node >= 1; --node)
        for (nn::Param* p : net.layer(node).params()) {
            const std::size_t chunk = (p->grad.size() + ranks - 1) / ranks;
            if (chunk > static_cast<std::size_t>(INT_MAX))
                throw Error("gradient exchange: '" + p->name + "' is too large for MPI counts");
            slot_of_[p] = slots_.size();
            Slot& slot = slots_.emplace_back();
            slot.param = p;
            slot.channel = comm.open_channel();
            slot.chunk = chunk;
        }
}

void GradientExchange::begin_step(std::int64_t local, std::int64_t global) {
    weight_ =
        static_cast<float>(static_cast<double>(local) * comm_.size() / static_cast<double>(global));
    bytes_sent_ = 0;
}

void GradientExchange::start(Slot& slot) {
    std::vector<float>& grad = slot.param->settle_grad();  // a step without samples clears it
    if (weight_ != 1.0f)
        for (float& g : grad) g *= weight_;
    const std::string what = "gradient exchange of '" + slot.param->name + "'";
    const std::size_t padded = slot.chunk * static_cast<std::size_t>(comm_.size());
    if (kind_ == GradExchange::fp32) {
        slot.f32_send.assign(padded, 0.0f);
        std::copy(grad.begin(), grad.end(), slot.f32_send.begin());
        slot.f32_recv.resize(padded);
        slot.request = comm_.alltoall(slot.channel, slot.f32_send.data(), slot.f32_recv.data(),
                                      static_cast<int>(slot.chunk), MPI_FLOAT, what);
        slot.phase = Phase::alltoall;
    } else {
        slot.max_bits = max_abs_bits(grad);
        slot.request =
            comm_.allreduce(slot.channel, &slot.max_bits, 1, MPI_UINT32_T, MPI_MAX, what);
        slot.phase = Phase::agree_exponent;
    }
    poll();
}

void GradientExchange::advance(Slot& slot) {
    const std::string what = "gradient exchange of '" + slot.param->name + "'";
    const auto ranks = static_cast<std::size_t>(comm_.size());
    const std::size_t own = slot.chunk * static_cast<std::size_t>(comm_.rank());
    const auto count = static_cast<int>(slot.chunk);
    const std::uint64_t block_bytes = (ranks - 1) * slot.chunk;  // times the bytes per value
    std::vector<float>& grad = slot.param->grad;
    switch (slot.phase) {
        case Phase::agree_exponent: {
            // Every rank sees the same maximum, so every rank stops here alike.
            if (slot.max_bits >= kNonFiniteBits)
                throw Error(
                    "gradient of '" + slot.param->name +
                    "' holds a NaN or Inf on some rank; training stopped before the update");
            bytes_sent_ += sizeof(slot.max_bits);
            slot.exponent = shared_exponent_of(slot.max_bits);
            const std::size_t padded = slot.chunk * ranks;
            slot.s16_send.assign(padded, 0);
            quantize_s16(grad, slot.exponent, std::span(slot.s16_send).first(grad.size()));
            slot.s16_recv.resize(padded);
            slot.request = comm_.alltoall(slot.channel, slot.s16_send.data(), slot.s16_recv.data(),
                                          count, MPI_INT16_T, what);
            slot.phase = Phase::alltoall;
            break;
        }
        case Phase::alltoall:
            // The send buffer is free again: it receives the averages of every chunk.
            if (kind_ == GradExchange::fp32) {
                bytes_sent_ += block_bytes * sizeof(float);
                average_chunks_f32(slot.f32_recv, comm_.size(),
                                   std::span(slot.f32_send).subspan(own, slot.chunk));
                slot.request = comm_.allgather_in_place(slot.channel, slot.f32_send.data(), count,
                                                        MPI_FLOAT, what);
            } else {
                bytes_sent_ += block_bytes * sizeof(std::int16_t);
                average_chunks_s16(slot.s16_recv, comm_.size(),
                                   std::span(slot.s16_send).subspan(own, slot.chunk));
                slot.request = comm_.allgather_in_place(slot.channel, slot.s16_send.data(), count,
                                                        MPI_INT16_T, what);
            }
            slot.phase = Phase::allgather;
            break;
        case Phase::allgather:
            if (kind_ == GradExchange::fp32) {
                bytes_sent_ += block_bytes * sizeof(float);
                std::copy_n(slot.f32_send.begin(), grad.size(), grad.begin());
            } else {
                bytes_sent_ += block_bytes * sizeof(std::int16_t);
                dequantize_s16(std::span(slot.s16_send).first(grad.size()), slot.exponent, grad);
            }
            slot.phase = Phase::done;
            break;
        case Phase::idle:
        case Phase::done:
            break;
    }
}

void GradientExchange::poll() {
    for (Slot& slot : slots_)
        while (slot.phase != Phase::idle && slot.phase != Phase::done && comm_.test(slot.request))
            advance(slot);
}

void GradientExchange::layer_done(nn::Layer& layer) {
    for (nn::Param* p : layer.params()) start(slots_[slot_of_.at(p)]);
}

void GradientExchange::finish() {
    for (Slot& slot : slots_)
        if (slot.phase == Phase::idle) start(slot);
    for (Slot& slot : slots_)
        while (slot.phase != Phase::done) {
            comm_.wait(slot.request);
            advance(slot);
        }
    for (Slot& slot : slots_) slot.phase = Phase::idle;
}

}  // namespace dfp::dist
