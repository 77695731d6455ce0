#include "nn/conv_lowering.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/isa.hpp"
#include "nn/conv_lowering_kernels.hpp"

namespace dfp::nn {

namespace {
// Copies `bytes` with fixed-size moves the compiler inlines: a patch run is one tap's channels
// or a few taps' (tens to hundreds of bytes), where a call to memcpy costs more than the copy.
inline void copy_short(char* out, const char* in, std::size_t bytes) {
    for (; bytes >= 32; bytes -= 32, out += 32, in += 32) std::memcpy(out, in, 32);
    if (bytes >= 16) std::memcpy(out, in, 16), out += 16, in += 16, bytes -= 16;
    if (bytes >= 8) std::memcpy(out, in, 8), out += 8, in += 8, bytes -= 8;
    if (bytes >= 4) std::memcpy(out, in, 4), out += 4, in += 4, bytes -= 4;
    if (bytes >= 2) std::memcpy(out, in, 2), out += 2, in += 2, bytes -= 2;
    if (bytes) *out = *in;
}
}  // namespace

bool is_direct_gemm(const ConvGeometry& g) {
    return g.kernel == 1 && g.stride == 1 && g.pad == 0;
}

bool subsamples_src(const ConvGeometry& g) {
    return g.kernel == 1 && g.stride > 1 && g.pad == 0;
}

PatchGeometry patch_geometry(const ConvGeometry& g) {
    return {g.n, g.h, g.w, g.c, g.kernel, g.kernel, g.stride, g.pad, g.pad, g.oh, g.ow};
}

template <class M>
void PatchSource<M>::fill(const void* self, std::int64_t row0, std::int64_t rows, std::int64_t col0,
                          std::int64_t cols, M* dst, std::int64_t ld) {
    const PatchSource& p = *static_cast<const PatchSource*>(self);
    const PatchGeometry& g = p.g;
    // Every row splits the columns the same way, into runs of channels of one tap: find them once
    // (per chunk of at most kMaxRuns), then copy them row by row, walking (n, oh, ow) along. At
    // any stride, whole taps next to each other in a kernel row read adjacent pixels: one run of
    // `taps` taps, copied at once where all of them are inside the image. (A 3-channel stem
    // copied tap by tap spent 58% of its DFP16 FPROP in 6-byte copies.)
    constexpr std::int64_t kMaxRuns = 32;
    PatchRun runs[kMaxRuns];
    const bool avx512 = active_isa() >= Isa::avx512;
    for (std::int64_t chunk = col0; chunk < col0 + cols;) {
        std::int64_t nruns = 0, col = chunk;
        while (col < col0 + cols && nruns < kMaxRuns) {
            const std::int64_t tap = col / g.c, c = col % g.c;
            const std::int64_t len = std::min(g.c - c, col0 + cols - col);
            const PatchRun run{tap / g.kw, tap % g.kw, c, len, 1};
            PatchRun* last = nruns > 0 ? &runs[nruns - 1] : nullptr;
            if (last && c == 0 && len == g.c && last->c == 0 && last->len == last->taps * g.c &&
                last->r == run.r && last->s + last->taps == run.s) {
                last->len += len;
                ++last->taps;
            } else {
                runs[nruns++] = run;
            }
            col += len;
        }
        M* out = dst + (chunk - col0);
        if (avx512)
            fill_patch_rows_avx512(p.src, g, runs, nruns, row0, rows, out, ld);
        else
            fill_patch_rows(p.src, g, runs, nruns, row0, rows, out, ld,
                            [](M* to, const M* from, std::int64_t count) {
                                copy_short(reinterpret_cast<char*>(to),
                                           reinterpret_cast<const char*>(from),
                                           std::size_t(count) * sizeof(M));
                            });
        chunk = col;
    }
}

template <class M>
std::pair<const char*, std::int64_t> PatchSource<M>::region(const void* self, std::int64_t row0,
                                                            std::int64_t rows) {
    const PatchSource& p = *static_cast<const PatchSource*>(self);
    const PatchGeometry& g = p.g;
    const std::int64_t last = row0 + std::max<std::int64_t>(rows, 1) - 1;
    // (image, input row) of the first and one past the last pixel row read.
    const std::int64_t n0 = row0 / (g.oh * g.ow), oh0 = row0 / g.ow % g.oh;
    const std::int64_t n1 = last / (g.oh * g.ow), oh1 = last / g.ow % g.oh;
    const std::int64_t begin = n0 * g.h + std::clamp<std::int64_t>(input_row(oh0, 0, g), 0, g.h);
    const std::int64_t end =
        n1 * g.h + std::clamp<std::int64_t>(input_row(oh1, g.kh - 1, g) + 1, 0, g.h);
    const std::int64_t row_bytes = g.w * g.c * std::int64_t(sizeof(M));
    return {reinterpret_cast<const char*>(p.src) + begin * row_bytes,
            std::max<std::int64_t>(end - begin, 0) * row_bytes};
}

namespace {
template <class T>
void lower(const T* s, const PatchGeometry& g, T* out) {
    const std::int64_t rows = g.n * g.oh * g.ow, patch = g.kh * g.kw * g.c;
    const std::size_t pixel_bytes = std::size_t(g.c) * sizeof(T);
#pragma omp parallel for schedule(static) if (rows * patch >= kMinParallelElements)
    for (std::int64_t row = 0; row < rows; ++row) {
        const std::int64_t n = row / (g.oh * g.ow), oh = row / g.ow % g.oh, ow = row % g.ow;
        T* dst = out + row * patch;
        for (std::int64_t r = 0; r < g.kh; ++r) {
            const std::int64_t ih = input_row(oh, r, g);
            for (std::int64_t t = 0; t < g.kw; ++t, dst += g.c) {
                const std::int64_t iw = input_col(ow, t, g);
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w)
                    std::memset(dst, 0, pixel_bytes);
                else
                    std::memcpy(dst, s + ((n * g.h + ih) * g.w + iw) * g.c, pixel_bytes);
            }
        }
    }
}

}  // namespace

void im2col(const Dfp16Tensor& src, const PatchGeometry& g, Dfp16Tensor& col) {
    const std::int64_t rows = g.n * g.oh * g.ow, patch = g.kh * g.kw * g.c;
    col.shape = {std::size_t(rows), std::size_t(patch)};
    col.format = src.format;
    col.exponents = src.exponents;
    col.mantissas.resize(std::size_t(rows * patch));
    lower(src.mantissas.data(), g, col.mantissas.data());
}

void im2col(const float* src, const PatchGeometry& g, float* col) {
    lower(src, g, col);
}

namespace {
// One axis of a BPROP phase: the first kernel tap that reaches input coordinate `phase` (mod
// stride), the taps from there (every stride-th), the phase's length and its padding as a
// stride-1 window over the output coordinates. Tap first + stride j reads output coordinate
// (x + pad - first) / stride - j for input x = phase + stride i: flipped (j' = taps - 1 - j), that
// is i - (taps - 1 - d) + j' with d = (phase + pad - first) / stride.
struct PhaseAxis {
    std::int64_t first, taps, length, pad;
};
PhaseAxis phase_axis(std::int64_t phase, std::int64_t size, std::int64_t kernel,
                     std::int64_t stride, std::int64_t pad) {
    PhaseAxis a{};
    a.first = (phase + pad) % stride;
    a.taps = a.first < kernel ? (kernel - a.first + stride - 1) / stride : 0;
    a.length = phase < size ? (size - phase + stride - 1) / stride : 0;
    a.pad = a.taps - 1 - (phase + pad - a.first) / stride;
    return a;
}
}  // namespace

BpropPhase bprop_phase(const ConvGeometry& g, std::int64_t ph, std::int64_t pw) {
    const PhaseAxis rows = phase_axis(ph, g.h, g.kernel, g.stride, g.pad);
    const PhaseAxis cols = phase_axis(pw, g.w, g.kernel, g.stride, g.pad);
    BpropPhase p{ph, pw, rows.first, cols.first, {}};
    p.patches = {g.n, g.oh,     g.ow,     g.k,         rows.taps,  cols.taps,
                 1,   rows.pad, cols.pad, rows.length, cols.length};
    return p;
}

template <class M>
void phase_weights(const DfpTensor<M>& wei, const ConvGeometry& g, const BpropPhase& p,
                   DfpTensor<M>& out) {
    const std::int64_t kh = p.patches.kh, kw = p.patches.kw;
    out.shape = {std::size_t(kh * kw * g.k), std::size_t(g.c)};
    out.format = wei.format;
    out.exponents = wei.exponents;
    out.mantissas.resize(std::size_t(kh * kw * g.k * g.c));
    const std::size_t row_bytes = std::size_t(g.c) * sizeof(M);
    M* to = out.mantissas.data();
    for (std::int64_t r = 0; r < kh; ++r)
        for (std::int64_t s = 0; s < kw; ++s) {
            const std::int64_t tap =
                (p.r0 + g.stride * (kh - 1 - r)) * g.kernel + p.s0 + g.stride * (kw - 1 - s);
            for (std::int64_t k = 0; k < g.k; ++k, to += g.c)
                std::memcpy(to, wei.mantissas.data() + (k * g.kernel * g.kernel + tap) * g.c,
                            row_bytes);
        }
}

void scatter_phases(float* diff_src, const float* phases, const ConvGeometry& g, bool add) {
    const std::int64_t s = g.stride;
    // Where each phase's block starts, and its length along H and W (0 when no tap reaches it).
    std::vector<const float*> block(std::size_t(s * s));
    std::vector<std::int64_t> rows(static_cast<std::size_t>(s)), cols(rows);
    const float* at = phases;
    for (std::int64_t ph = 0; ph < s; ++ph)
        for (std::int64_t pw = 0; pw < s; ++pw) {
            const BpropPhase p = bprop_phase(g, ph, pw);
            rows[std::size_t(ph)] = p.patches.oh;
            cols[std::size_t(pw)] = p.patches.ow;
            block[std::size_t(ph * s + pw)] = p.empty() ? nullptr : at;
            if (!p.empty()) at += g.n * p.patches.oh * p.patches.ow * g.c;
        }
#pragma omp parallel for schedule(static) if (g.n * g.h * g.w * g.c >= kMinParallelElements)
    for (std::int64_t nh = 0; nh < g.n * g.h; ++nh) {
        const std::int64_t n = nh / g.h, ih = nh % g.h, ph = ih % s;
        const std::int64_t phase_row = n * rows[std::size_t(ph)] + ih / s;
        float* dst = diff_src + nh * g.w * g.c;
        for (std::int64_t iw = 0; iw < g.w; ++iw, dst += g.c) {
            const std::int64_t pw = iw % s;
            const float* src = block[std::size_t(ph * s + pw)];
            if (src == nullptr) {
                if (!add) std::fill_n(dst, g.c, 0.0f);
                continue;
            }
            src += (phase_row * cols[std::size_t(pw)] + iw / s) * g.c;
            if (add)
                for (std::int64_t c = 0; c < g.c; ++c) dst[c] += src[c];
            else
                std::memcpy(dst, src, std::size_t(g.c) * sizeof(float));
        }
    }
}

template struct PatchSource<std::int16_t>;
template struct PatchSource<std::int8_t>;
template void phase_weights(const Dfp16Tensor&, const ConvGeometry&, const BpropPhase&,
                            Dfp16Tensor&);
template void phase_weights(const Dfp8Tensor&, const ConvGeometry&, const BpropPhase&, Dfp8Tensor&);

void col2im_add(float* diff_src, const float* dcol, const ConvGeometry& conv) {
    const PatchGeometry g = patch_geometry(conv);
    const std::int64_t patch = g.kh * g.kw * g.c;
    // Patches of one image overlap only within that image, so images run in parallel.
#pragma omp parallel for schedule(static) if (g.n * g.oh * g.ow * patch >= kMinParallelElements)
    for (std::int64_t n = 0; n < g.n; ++n)
        for (std::int64_t oh = 0; oh < g.oh; ++oh)
            for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                const float* src = dcol + ((n * g.oh + oh) * g.ow + ow) * patch;
                for (std::int64_t r = 0; r < g.kh; ++r) {
                    const std::int64_t ih = input_row(oh, r, g);
                    for (std::int64_t t = 0; t < g.kw; ++t, src += g.c) {
                        const std::int64_t iw = input_col(ow, t, g);
                        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                        float* dst = diff_src + ((n * g.h + ih) * g.w + iw) * g.c;
                        for (std::int64_t c = 0; c < g.c; ++c) dst[c] += src[c];
                    }
                }
            }
}

}  // namespace dfp::nn
