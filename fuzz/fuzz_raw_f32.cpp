// read_raw_f32 on any bytes, with no shape and with a shape taken from the first bytes.
#include "base/error.hpp"
#include "data/idx.hpp"
#include "fuzz_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz_file("raw", data, size);
    dfp::Shape shape;
    for (std::size_t i = 0; i < size && i < 3; ++i) shape.push_back(data[i] % 17);
    for (const dfp::Shape& s : {dfp::Shape{}, shape}) {
        try {
            const dfp::data::Array a = dfp::data::read_raw_f32(path, s);
            if (a.values.size() != dfp::shape_numel(a.shape)) std::abort();
        } catch (const dfp::Error&) {
        }
    }
    std::remove(path.c_str());
    return 0;
}
