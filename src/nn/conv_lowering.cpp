#include "nn/conv_lowering.hpp"

#include <cstring>

namespace dfp::nn {

namespace {
// The input row (or column) read by output row oh at kernel tap r; outside [0, H) is padding.
std::int64_t input_coord(std::int64_t out, std::int64_t tap, const ConvGeometry& g) {
    return out * g.stride - g.pad + tap;
}
}  // namespace

bool is_direct_gemm(const ConvGeometry& g) { return g.kernel == 1 && g.stride == 1 && g.pad == 0; }

void im2col(const Dfp16Tensor& src, const ConvGeometry& g, Dfp16Tensor& col) {
    const std::int64_t rows = g.n * g.oh * g.ow, patch = g.kernel * g.kernel * g.c;
    col.shape = {std::size_t(rows), std::size_t(patch)};
    col.format = src.format;
    col.exponents = src.exponents;
    col.mantissas.resize(std::size_t(rows * patch));
    const std::int16_t* s = src.mantissas.data();
    std::int16_t* out = col.mantissas.data();
    const std::size_t pixel_bytes = std::size_t(g.c) * sizeof(std::int16_t);
#pragma omp parallel for schedule(static) if (rows * patch >= kMinParallelElements)
    for (std::int64_t row = 0; row < rows; ++row) {
        const std::int64_t n = row / (g.oh * g.ow), oh = row / g.ow % g.oh, ow = row % g.ow;
        std::int16_t* dst = out + row * patch;
        for (std::int64_t r = 0; r < g.kernel; ++r) {
            const std::int64_t ih = input_coord(oh, r, g);
            for (std::int64_t t = 0; t < g.kernel; ++t, dst += g.c) {
                const std::int64_t iw = input_coord(ow, t, g);
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w)
                    std::memset(dst, 0, pixel_bytes);
                else
                    std::memcpy(dst, s + ((n * g.h + ih) * g.w + iw) * g.c, pixel_bytes);
            }
        }
    }
}

void col2im_add(float* diff_src, const float* dcol, const ConvGeometry& g) {
    const std::int64_t patch = g.kernel * g.kernel * g.c;
    // Patches of one image overlap only within that image, so images run in parallel.
#pragma omp parallel for schedule(static) if (g.n * g.oh * g.ow * patch >= kMinParallelElements)
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oh = 0; oh < g.oh; ++oh)
            for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                const float* src = dcol + ((n * g.oh + oh) * g.ow + ow) * patch;
                for (std::int64_t r = 0; r < g.kernel; ++r) {
                    const std::int64_t ih = input_coord(oh, r, g);
                    for (std::int64_t t = 0; t < g.kernel; ++t, src += g.c) {
                        const std::int64_t iw = input_coord(ow, t, g);
                        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                        float* dst = diff_src + ((n * g.h + ih) * g.w + iw) * g.c;
                        for (std::int64_t c = 0; c < g.c; ++c) dst[c] += src[c];
                    }
                }
            }
}

}  // namespace dfp::nn
