#include "data/jpeg.hpp"

#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>

#include "base/error.hpp"

namespace dfp::data {
namespace {

struct TjDestroy {
    void operator()(void* handle) const { tjDestroy(handle); }
};
using TjHandle = std::unique_ptr<void, TjDestroy>;

constexpr int kRgbChannels = 3;

// The weights with which one output axis of resize_center_crop reads its source axis: output i
// reads source pixels first[i] .. first[i] + taps - 1 with weights[i * taps + k] (trailing
// weights are zero where an output needs fewer taps).
struct AxisFilter {
    std::int64_t taps = 0;
    std::vector<std::int64_t> first;
    std::vector<float> weights;
};

// Output pixels offset .. offset + count - 1 of a `src_len` axis scaled to `dst_len` pixels.
AxisFilter axis_filter(std::int64_t src_len, std::int64_t dst_len, std::int64_t offset,
                       std::int64_t count) {
    const double scale = static_cast<double>(src_len) / static_cast<double>(dst_len);
    // Half-width of the triangle in source pixels: 1 when enlarging (plain bilinear), the
    // shrink factor when shrinking, so the triangles of neighbouring outputs tile the source.
    const double support = std::max(1.0, scale);
    AxisFilter f;
    f.taps = static_cast<std::int64_t>(std::ceil(support)) * 2 + 1;
    f.first.resize(static_cast<std::size_t>(count));
    f.weights.assign(static_cast<std::size_t>(count * f.taps), 0.0f);
    for (std::int64_t i = 0; i < count; ++i) {
        const double center = (static_cast<double>(offset + i) + 0.5) * scale;
        const std::int64_t lo =
            std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(center - support)));
        const std::int64_t hi = std::min<std::int64_t>(
            {src_len, static_cast<std::int64_t>(std::ceil(center + support)), lo + f.taps});
        double sum = 0;
        for (std::int64_t j = lo; j < hi; ++j)
            sum += std::max(0.0, 1.0 - std::abs(static_cast<double>(j) + 0.5 - center) / support);
        // sum > 0: the source pixel nearest to `center` is at most 0.5 away, weight >= 0.5.
        // Normalising also replicates the edge pixel where the triangle hangs over the border.
        f.first[i] = lo;
        for (std::int64_t j = lo; j < hi; ++j)
            f.weights[i * f.taps + (j - lo)] = static_cast<float>(
                std::max(0.0, 1.0 - std::abs(static_cast<double>(j) + 0.5 - center) / support) /
                sum);
    }
    return f;
}

}  // namespace

RgbImage decode_jpeg(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                     std::int64_t max_pixels) {
    // Every JPEG starts with the SOI marker FF D8; checking it here gives other formats (PNG,
    // text, an empty file) a plain message instead of libjpeg's.
    if (size < 2 || bytes[0] != 0xFF || bytes[1] != 0xD8)
        throw Error("'" + name +
                    "': not a JPEG file (it does not start with the JPEG marker FF D8)");
    const TjHandle tj(tjInitDecompress());
    if (!tj)
        throw Error("'" + name + "': cannot start the JPEG decoder: " + tjGetErrorStr2(nullptr));
    const auto fail = [&](const char* what) {
        return Error("'" + name + "': " + what + " (libjpeg: " + tjGetErrorStr2(tj.get()) + ")");
    };
    int width = 0, height = 0, subsampling = 0, colorspace = 0;
    if (tjDecompressHeader3(tj.get(), bytes, static_cast<unsigned long>(size), &width, &height,
                            &subsampling, &colorspace) != 0)
        throw fail("corrupt JPEG header");
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
        throw Error("'" + name + "': CMYK JPEGs are not supported (convert it to RGB)");
    // libjpeg accepts a header that ends before its frame and reports 0 x 0.
    if (width < 1 || height < 1)
        throw Error("'" + name + "': corrupt JPEG header (no image size before the data ends)");
    if (static_cast<std::int64_t>(width) * static_cast<std::int64_t>(height) > max_pixels)
        throw Error("'" + name + "': " + std::to_string(width) + " x " + std::to_string(height) +
                    " pixels is more than the " + std::to_string(max_pixels) + " pixels allowed");
    RgbImage img;
    img.height = height;
    img.width = width;
    img.pixels.resize(static_cast<std::size_t>(img.height * img.width * kRgbChannels));
    // STOPONWARNING: a truncated or damaged stream is an error, not a partly grey image.
    if (tjDecompress2(tj.get(), bytes, static_cast<unsigned long>(size), img.pixels.data(), width,
                      0, height, TJPF_RGB, TJFLAG_STOPONWARNING) != 0)
        throw fail("corrupt or truncated JPEG data");
    return img;
}

RgbImage read_jpeg(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("'" + path + "': cannot open");
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                          std::istreambuf_iterator<char>());
    if (in.bad()) throw Error("'" + path + "': read error");
    return decode_jpeg(bytes.data(), bytes.size(), path);
}

void resize_center_crop(const RgbImage& src, std::int64_t resize, std::int64_t crop, float* dst) {
    if (crop < 1 || crop > resize)
        throw Error("resize_center_crop: need 1 <= crop <= resize, got crop " +
                    std::to_string(crop) + ", resize " + std::to_string(resize));
    // The shorter side becomes `resize`; the longer one keeps the aspect ratio (at least
    // `resize`, so the crop fits).
    const auto scaled = [&](std::int64_t side, std::int64_t other) {
        return std::max(resize, static_cast<std::int64_t>(std::llround(
                                    static_cast<double>(side) * static_cast<double>(resize) /
                                    static_cast<double>(other))));
    };
    const bool portrait = src.height > src.width;
    const std::int64_t rh = portrait ? scaled(src.height, src.width) : resize;
    const std::int64_t rw = portrait ? resize : scaled(src.width, src.height);
    const AxisFilter fy = axis_filter(src.height, rh, (rh - crop) / 2, crop);
    const AxisFilter fx = axis_filter(src.width, rw, (rw - crop) / 2, crop);

    // Horizontal pass over the source rows the vertical pass reads, then the vertical pass.
    const std::int64_t y0 = fy.first.front();
    const std::int64_t y1 = std::min(src.height, fy.first.back() + fy.taps);
    std::vector<float> rows(static_cast<std::size_t>((y1 - y0) * crop * kRgbChannels));
    for (std::int64_t y = y0; y < y1; ++y) {
        const std::uint8_t* s = &src.pixels[y * src.width * kRgbChannels];
        float* r = &rows[(y - y0) * crop * kRgbChannels];
        for (std::int64_t x = 0; x < crop; ++x) {
            float acc[kRgbChannels] = {};
            const std::int64_t taps = std::min(fx.taps, src.width - fx.first[x]);
            for (std::int64_t k = 0; k < taps; ++k) {
                const float w = fx.weights[x * fx.taps + k];
                const std::uint8_t* p = s + (fx.first[x] + k) * kRgbChannels;
                for (int c = 0; c < kRgbChannels; ++c) acc[c] += w * static_cast<float>(p[c]);
            }
            for (int c = 0; c < kRgbChannels; ++c) r[x * kRgbChannels + c] = acc[c];
        }
    }
    const std::int64_t row_len = crop * kRgbChannels;
    for (std::int64_t y = 0; y < crop; ++y) {
        float* d = dst + y * row_len;
        std::fill(d, d + row_len, 0.0f);
        const std::int64_t taps = std::min(fy.taps, y1 - fy.first[y]);
        for (std::int64_t k = 0; k < taps; ++k) {
            const float w = fy.weights[y * fy.taps + k];
            const float* r = &rows[(fy.first[y] + k - y0) * row_len];
            for (std::int64_t i = 0; i < row_len; ++i) d[i] += w * r[i];
        }
    }
}

}  // namespace dfp::data
