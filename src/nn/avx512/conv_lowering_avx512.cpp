// PatchSource's rows with zmm copies (conv_lowering_kernels.hpp). Full 64-byte moves while they
// fit, then one 32-byte move, then a masked one: runs are whole taps of channels, so the tail is
// often empty (C = 64) or one ymm (C = 16).
#include <immintrin.h>

#include <cstddef>

#include "nn/conv_lowering_kernels.hpp"

namespace dfp::nn {
namespace {

inline void copy_bytes(char* out, const char* in, std::size_t n) {
    for (; n >= 64; n -= 64, in += 64, out += 64) _mm512_storeu_si512(out, _mm512_loadu_si512(in));
    if (n >= 32) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in)));
        n -= 32, in += 32, out += 32;
    }
    if (n > 0) {
        const auto m = static_cast<__mmask32>((1u << n) - 1u);  // n < 32
        _mm256_mask_storeu_epi8(out, m, _mm256_maskz_loadu_epi8(m, in));
    }
}

template <class M>
void fill_rows(const M* src, const PatchGeometry& g, const PatchRun* runs, std::int64_t nruns,
               std::int64_t row0, std::int64_t rows, M* dst, std::int64_t ld) {
    fill_patch_rows(src, g, runs, nruns, row0, rows, dst, ld,
                    [](M* out, const M* in, std::int64_t count) {
                        copy_bytes(reinterpret_cast<char*>(out), reinterpret_cast<const char*>(in),
                                   std::size_t(count) * sizeof(M));
                    });
}

}  // namespace

void fill_patch_rows_avx512(const std::int16_t* src, const PatchGeometry& g, const PatchRun* runs,
                            std::int64_t nruns, std::int64_t row0, std::int64_t rows,
                            std::int16_t* dst, std::int64_t ld) {
    fill_rows(src, g, runs, nruns, row0, rows, dst, ld);
}
void fill_patch_rows_avx512(const std::int8_t* src, const PatchGeometry& g, const PatchRun* runs,
                            std::int64_t nruns, std::int64_t row0, std::int64_t rows,
                            std::int8_t* dst, std::int64_t ld) {
    fill_rows(src, g, runs, nruns, row0, rows, dst, ld);
}

}  // namespace dfp::nn
