// The row loop of PatchSource::fill (nn/conv_lowering.hpp), shared by the portable fill and the
// AVX-512 one (avx512/conv_lowering_avx512.cpp), which differ only in how a run is copied: the
// portable one in 32-byte moves or smaller (nn/ is built for any x86-64), the AVX-512 one in zmm
// moves with a masked tail. A 3x3 convolution with 64 channels copies runs of 384 bytes, where
// the 16-byte moves of x86-64's baseline took about a fifth of the DFP16 FPROP.
#pragma once

#include <algorithm>
#include <cstdint>

#include "nn/conv_lowering.hpp"

namespace dfp::nn {

// The input row read by patch row oh at kernel row r, and the input column read by patch column ow
// at kernel column s; outside [0, H) and [0, W) is padding.
inline std::int64_t input_row(std::int64_t oh, std::int64_t r, const PatchGeometry& g) {
    return oh * g.stride - g.pad_h + r;
}
inline std::int64_t input_col(std::int64_t ow, std::int64_t s, const PatchGeometry& g) {
    return ow * g.stride - g.pad_w + s;
}

// Columns of the patch matrix that one copy fills in every row: channels [c, c + len) of tap
// (r, s), or `taps` whole taps side by side in kernel row r, adjacent pixels in src (any stride).
struct PatchRun {
    std::int64_t r, s, c, len, taps;
};

// Rows [row0, row0 + rows) of the patch matrix of src, over the columns of runs[0, nruns) in
// order, into dst (leading dimension ld); copy(out, in, count) copies count elements.
template <class M, class Copy>
inline void fill_patch_rows(const M* src, const PatchGeometry& g, const PatchRun* runs,
                            std::int64_t nruns, std::int64_t row0, std::int64_t rows, M* dst,
                            std::int64_t ld, Copy copy) {
    std::int64_t n = row0 / (g.oh * g.ow), oh = row0 / g.ow % g.oh, ow = row0 % g.ow;
    for (std::int64_t row = 0; row < rows; ++row) {
        const M* image = src + n * g.h * g.w * g.c;
        M* out = dst + row * ld;
        for (std::int64_t i = 0; i < nruns; ++i) {
            const PatchRun& run = runs[i];
            const std::int64_t ih = input_row(oh, run.r, g), iw = input_col(ow, run.s, g);
            const bool row_inside = ih >= 0 && ih < g.h;
            if (row_inside && iw >= 0 && iw + run.taps <= g.w) {
                copy(out, image + (ih * g.w + iw) * g.c + run.c, run.len);
            } else {  // some tap in the padding: tap by tap
                const std::int64_t tap_len = run.len / run.taps;
                for (std::int64_t t = 0; t < run.taps; ++t) {
                    M* to = out + t * tap_len;
                    if (row_inside && iw + t >= 0 && iw + t < g.w)
                        copy(to, image + (ih * g.w + iw + t) * g.c + run.c, tap_len);
                    else
                        std::fill_n(to, tap_len, M{0});
                }
            }
            out += run.len;
        }
        if (++ow == g.ow) {
            ow = 0;
            if (++oh == g.oh) oh = 0, ++n;
        }
    }
}

// fill_patch_rows with zmm copies (AVX-512 F and BW).
void fill_patch_rows_avx512(const std::int16_t* src, const PatchGeometry& g, const PatchRun* runs,
                            std::int64_t nruns, std::int64_t row0, std::int64_t rows,
                            std::int16_t* dst, std::int64_t ld);
void fill_patch_rows_avx512(const std::int8_t* src, const PatchGeometry& g, const PatchRun* runs,
                            std::int64_t nruns, std::int64_t row0, std::int64_t rows,
                            std::int8_t* dst, std::int64_t ld);

}  // namespace dfp::nn
