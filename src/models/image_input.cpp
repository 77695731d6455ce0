#include "models/image_input.hpp"

#include "base/error.hpp"
#include "models/summary.hpp"

namespace dfp::models {

Shape image_shape(const ImageInput& in, std::int64_t batch) {
    return {std::size_t(batch), std::size_t(in.height), std::size_t(in.width),
            std::size_t(in.channels)};
}

std::string input_string(const ImageInput& in) {
    return std::to_string(in.height) + "x" + std::to_string(in.width) + "x" +
           std::to_string(in.channels) + " with " + std::to_string(in.classes) + " classes";
}

void check_input(const ImageInput& in, const std::string& model) {
    if (in.height < 1 || in.width < 1 || in.channels < 1 || in.classes < 2)
        throw Error(model + ": needs sides and channels >= 1 and >= 2 classes, got " +
                    input_string(in));
}

Shape output_shape(nn::Net& net, const ImageInput& in, const std::string& model) {
    try {
        return infer_shapes(net, image_shape(in, 1)).back();
    } catch (const Error& e) {
        throw Error(model + ": the input " + input_string(in) +
                    " is too small for it: " + e.what());
    }
}

}  // namespace dfp::models
