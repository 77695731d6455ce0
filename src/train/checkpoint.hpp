// Checkpoints: everything a run needs to continue exactly where it stopped: the FP32 master
// weights, the SGD momentum buffers, the layers' non-trained state (BatchNorm running
// statistics), the epoch and iteration, and the run's configuration.
//
// File layout (little-endian, as on x86):
//   "DFPCKPT\0"  u32 version  u64 header_bytes  header (JSON: config, epoch, iteration, and the
//   list of tensors as [name, element count])  the tensors' FP32 values in that order
//   u32 CRC-32 (zlib) of every byte before it
// Written atomically: a temporary file in the same folder, fsync, rename, fsync of the folder,
// so a crash leaves either the old checkpoint or the new one, never half of one.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "nn/net.hpp"
#include "train/sgd.hpp"

namespace dfp::train {

struct RunState {
    std::int64_t epochs_done = 0;  // completed epochs
    std::int64_t iteration = 0;    // the next iteration to run
    nlohmann::json config;         // the options that must match to resume (model, precision, ...)
};

// Throws dfp::Error naming the path when the folder cannot be written.
void save_checkpoint(const std::string& path, nn::Net& net, Sgd& sgd, const RunState& state);

// Restores net and sgd (built the same way as when saved) and returns the saved state. Throws
// dfp::Error naming the path on a missing, truncated or corrupt file (checksum), another
// version, or tensors that do not match the network; net and sgd are unchanged then.
RunState load_checkpoint(const std::string& path, nn::Net& net, Sgd& sgd);

// The saved state and options alone (e.g. to rebuild the network that load_checkpoint needs),
// with the same checks of the file.
RunState read_checkpoint_state(const std::string& path);

}  // namespace dfp::train
