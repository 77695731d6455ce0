// read_idx on any bytes: a dfp::Error or a well-formed array, never a crash or a hang.
#include "base/error.hpp"
#include "data/idx.hpp"
#include "fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz_file("idx", data, size);
    try {
        const dfp::data::Array a = dfp::data::read_idx(path);
        if (a.values.size() != dfp::shape_numel(a.shape)) std::abort();
    } catch (const dfp::Error&) {
    }
    std::remove(path.c_str());
    return 0;
}
