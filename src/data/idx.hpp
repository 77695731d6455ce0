// Readers for the array files users bring: IDX (MNIST, Fashion-MNIST; gzip or plain) and raw
// little-endian float32. Errors name the file and what was expected.
#pragma once

#include <string>
#include <vector>

#include "format/format.hpp"

namespace dfp::data {

struct Array {
    Shape shape;
    std::vector<float> values;  // row-major
    std::string element_type;   // as stored in the file: "u8", "s8", "s16", "s32", "f32", "f64"
};

// IDX: magic 0x00 0x00 <type> <rank>, then `rank` big-endian uint32 dimensions, then the data,
// big-endian. A .gz file is decompressed on the fly (zlib reads plain files as they are).
Array read_idx(const std::string& path);

// Raw float32 (host byte order, little-endian on x86). `shape` is checked against the file size;
// an empty shape means one axis of whatever length the file has.
Array read_raw_f32(const std::string& path, const Shape& shape);

}  // namespace dfp::data
