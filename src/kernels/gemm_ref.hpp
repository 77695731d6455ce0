// Naive GEMM references for tests and benchmarks: exact, slow, independent of the packed layout.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/gemm.hpp"

namespace dfp::kernels {

// Exact sum_k op(A)_ik op(B)_kj in int64 (no overflow for any K < 2^33), row-major M x N.
template <typename T>
std::vector<int64_t> ref_gemm_exact(int64_t m, int64_t n, int64_t k, const DfpMatrix<T>& a,
                                    const DfpMatrix<T>& b);

// The same, as double and scaled by 2^(eA_i + eB_j) (exact while the sum has <= 53 bits).
template <typename T>
std::vector<double> ref_gemm_scaled(int64_t m, int64_t n, int64_t k, const DfpMatrix<T>& a,
                                    const DfpMatrix<T>& b);

}  // namespace dfp::kernels
