#include "kernels/gemm_ref.hpp"

#include <cmath>

namespace dfp::kernels {
namespace {

template <typename T>
T at(const DfpMatrix<T>& x, int64_t r, int64_t c) {  // op(X)(r, c)
    return x.op == Op::n ? x.data[r * x.ld + c] : x.data[c * x.ld + r];
}

int exponent(std::span<const int> e, int64_t i) {
    return e.empty() ? 0 : e[e.size() == 1 ? 0 : static_cast<size_t>(i)];
}

}  // namespace

template <typename T>
std::vector<int64_t> ref_gemm_exact(int64_t m, int64_t n, int64_t k, const DfpMatrix<T>& a,
                                    const DfpMatrix<T>& b) {
    std::vector<int64_t> c(static_cast<size_t>(m * n), 0);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t kk = 0; kk < k; ++kk) {
            const int64_t aik = at(a, i, kk);
            if (aik == 0) continue;
            for (int64_t j = 0; j < n; ++j) c[static_cast<size_t>(i * n + j)] += aik * at(b, kk, j);
        }
    return c;
}

template <typename T>
std::vector<double> ref_gemm_scaled(int64_t m, int64_t n, int64_t k, const DfpMatrix<T>& a,
                                    const DfpMatrix<T>& b) {
    const std::vector<int64_t> exact = ref_gemm_exact(m, n, k, a, b);
    std::vector<double> c(exact.size());
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
            c[static_cast<size_t>(i * n + j)] =
                std::ldexp(static_cast<double>(exact[static_cast<size_t>(i * n + j)]),
                           exponent(a.exponents, i) + exponent(b.exponents, j));
    return c;
}

template std::vector<int64_t> ref_gemm_exact(int64_t, int64_t, int64_t, const DfpMatrix<int16_t>&,
                                             const DfpMatrix<int16_t>&);
template std::vector<int64_t> ref_gemm_exact(int64_t, int64_t, int64_t, const DfpMatrix<int8_t>&,
                                             const DfpMatrix<int8_t>&);
template std::vector<double> ref_gemm_scaled(int64_t, int64_t, int64_t, const DfpMatrix<int16_t>&,
                                             const DfpMatrix<int16_t>&);
template std::vector<double> ref_gemm_scaled(int64_t, int64_t, int64_t, const DfpMatrix<int8_t>&,
                                             const DfpMatrix<int8_t>&);

}  // namespace dfp::kernels
