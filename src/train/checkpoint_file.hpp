// The checkpoint file format, apart from what a network is: bytes in, checked fields out, and
// bytes written atomically. train/checkpoint.hpp maps a network and its optimizer onto it.
//
// File layout (little-endian, as on x86):
//   "DFPCKPT\0"  u32 version  u64 header_bytes  header (JSON: config, epoch, iteration, and the
//   list of tensors as [name, element count])  the tensors' FP32 values in that order
//   u32 CRC-32 (zlib) of every byte before it
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace dfp::train {

struct RunState {
    std::int64_t epochs_done = 0;  // completed epochs
    std::int64_t iteration = 0;    // the next iteration to run
    nlohmann::json config;         // the options that must match to resume (model, precision, ...)
};

// A checkpoint's bytes, checked (magic, checksum, version, header, sizes); values not yet copied.
struct CheckpointFile {
    std::vector<unsigned char> bytes;
    RunState state;
    std::vector<std::pair<std::string, std::size_t>> tensors;  // [name, element count], file order
    std::size_t data_offset = 0;  // where the first tensor's values start
};

// Checks `bytes`; throws dfp::Error "checkpoint '<path>': ..." naming what is wrong.
CheckpointFile parse_checkpoint(std::vector<unsigned char> bytes, const std::string& path);
CheckpointFile read_checkpoint_file(const std::string& path);

// The bytes of a checkpoint of `state` and the named tensors, checksum included.
std::vector<unsigned char> encode_checkpoint(
    const RunState& state,
    const std::vector<std::pair<std::string, const std::vector<float>*>>& tensors);

// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename, fsync
// of the folder, so a crash leaves either the old file or the new one, never half of one.
void write_file_atomically(const std::string& path, const std::vector<unsigned char>& bytes);

// CRC-32 (zlib) of n bytes.
std::uint32_t crc32_of(const unsigned char* data, std::size_t n);

}  // namespace dfp::train
