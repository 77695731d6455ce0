// JPEG files as RGB pixels (libturbojpeg), and the resize + centre crop that gives every image of
// a folder dataset the same shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dfp::data {

// An 8-bit RGB image, rows top to bottom: pixels (height, width, 3).
struct RgbImage {
    std::int64_t height = 0, width = 0;
    std::vector<std::uint8_t> pixels;
};

// Larger images are refused rather than decoded: a corrupt or hostile header can claim 65535 x
// 65535 pixels (12 GiB of RGB), and no photo of a training set comes near this (2^27 = 134 M
// pixels, 384 MiB as RGB).
inline constexpr std::int64_t kMaxJpegPixels = std::int64_t{1} << 27;

// Decodes the JPEG `bytes` (read from `name`, used only in errors) to RGB; a greyscale JPEG gives
// three equal channels. Throws dfp::Error naming `name` and the cause for anything that is not
// a complete, valid JPEG: other formats, corrupt or truncated data (libjpeg's warnings, such as
// "premature end of data", count as errors: a half-grey image would train silently), CMYK, or
// more than `max_pixels` pixels.
RgbImage decode_jpeg(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                     std::int64_t max_pixels = kMaxJpegPixels);

// Reads and decodes the JPEG file at `path` (dfp::Error naming the file when it cannot be read).
RgbImage read_jpeg(const std::string& path);

// Scales `src` so that its shorter side is `resize` pixels (the longer one keeps the aspect
// ratio, rounded) and cuts the centre `crop` x `crop` square out of the result (crop <= resize),
// as FP32 values 0..255 in (crop, crop, 3) at `dst`. Only the cropped pixels are computed.
// The filter is bilinear (a triangle) whose width grows with the shrink factor, so that every
// source pixel contributes when shrinking more than 2x (plain bilinear sampling would skip
// pixels and alias); enlarging is plain bilinear. Pixel centres sit at +0.5.
void resize_center_crop(const RgbImage& src, std::int64_t resize, std::int64_t crop, float* dst);

}  // namespace dfp::data
