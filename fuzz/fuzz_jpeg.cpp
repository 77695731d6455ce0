// decode_jpeg and resize_center_crop on any bytes: the JPEG reader of image folders. libjpeg
// itself is Debian's build (not instrumented), so the fuzzer steers by our code's coverage and
// ASan watches our side: header checks, buffer sizes, and the resize filter on odd shapes.
#include <cstdlib>
#include <vector>

#include "base/error.hpp"
#include "data/jpeg.hpp"

namespace {
// Far below the reader's own limit, so that a header claiming a large image costs the fuzzer
// milliseconds, not a 384 MiB buffer.
constexpr std::int64_t kFuzzMaxPixels = std::int64_t{1} << 20;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const dfp::data::RgbImage img = dfp::data::decode_jpeg(data, size, "fuzz", kFuzzMaxPixels);
        if (img.pixels.size() != static_cast<std::size_t>(img.height * img.width * 3)) std::abort();
        // Shrinking (crop < resize) and enlarging (most inputs are smaller than 37 pixels).
        for (const auto [resize, crop] : {std::pair{5, 3}, std::pair{37, 32}}) {
            std::vector<float> dst(static_cast<std::size_t>(crop * crop * 3));
            dfp::data::resize_center_crop(img, resize, crop, dst.data());
            for (const float v : dst)
                if (!(v >= 0.0f && v <= 255.5f)) std::abort();  // a convex mix of 0..255
        }
    } catch (const dfp::Error&) {
    }
    return 0;
}
