// Checkpoints: everything a run needs to continue exactly where it stopped: the FP32 master
// weights, the SGD momentum buffers, the layers' non-trained state (BatchNorm running
// statistics), the epoch and iteration, and the run's configuration. The file format and its
// atomic write are in train/checkpoint_file.hpp.
#pragma once

#include <string>

#include "nn/net.hpp"
#include "train/checkpoint_file.hpp"
#include "train/sgd.hpp"

namespace dfp::train {

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
