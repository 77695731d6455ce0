// parse_checkpoint on any bytes, twice: as they are (the checksum guards the rest), and with a
// correct checksum appended, so the fuzzer reaches the header and size checks behind it.
#include <vector>

#include "base/error.hpp"
#include "train/checkpoint_file.hpp"

namespace {

void parse(std::vector<unsigned char> bytes) {
    try {
        const dfp::train::CheckpointFile f = dfp::train::parse_checkpoint(std::move(bytes), "fuzz");
        std::size_t values = 0;
        for (const auto& [name, count] : f.tensors) values += count;
        if (f.data_offset + values * sizeof(float) + sizeof(std::uint32_t) != f.bytes.size())
            std::abort();
    } catch (const dfp::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<unsigned char> bytes(data, data + size);
    parse(bytes);
    const std::uint32_t crc = dfp::train::crc32_of(bytes.data(), bytes.size());
    const auto* p = reinterpret_cast<const unsigned char*>(&crc);
    bytes.insert(bytes.end(), p, p + sizeof crc);
    parse(std::move(bytes));
    return 0;
}
