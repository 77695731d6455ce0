// Side-by-side GEMM benchmark: DFP16 (and DFP8) integer GEMM against oneDNN FP32 sgemm and oneDNN
// bf16 matmul on the same shapes, threads and data, in one process. Used by `dfptrain bench gemm`
// and by bench/bench_gemm.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"

namespace dfp::bench {

using kernels::GemmOptions;
using kernels::GemmReport;
using kernels::Op;

struct GemmShape {
    int64_t m, n, k;
    Op op_a, op_b;
    std::string form;  // "gemm", "fprop", "bprop" (A transposed) or "wtgrad" (B transposed)
};

// The shapes: 1024^3, the conv FPROP shapes with their BPROP and WTGRAD forms
// (BPROP: M and K swap, A^T; WTGRAD: K = NPQ, B^T), and the FC shape 1000 x 8 x 2048.
std::vector<GemmShape> default_gemm_shapes();
// "M,N,K" or "M,N,K,XY" with X, Y in {N, T} (op of A, op of B).
GemmShape parse_gemm_shape(const std::string& text);

// dfp8: int8 mantissas, one exponent per tensor; mxint8: int8 with one exponent per row (column)
// and block of 32 K values (OCP MX, block-scaled GEMM); onednn_s8: oneDNN's int8 matmul (s8 x s8
// -> FP32 with one scale), the int8 reference from a library.
enum class GemmImpl { dfp16, dfp8, mxint8, onednn_fp32, onednn_bf16, onednn_s8 };
const char* impl_name(GemmImpl impl);

// One shape's data (normal N(0,1) floats; DFP16/DFP8 by the paper's rule with s = 0: E =
// floor(log2 max|f|) - (P - 2), round to nearest even, clamp symmetrically) and the prepared
// primitives. run() executes one GEMM of the named implementation with `threads` threads.
class GemmBenchCase {
  public:
    GemmBenchCase(const GemmShape& shape, uint32_t seed);
    ~GemmBenchCase();
    GemmBenchCase(const GemmBenchCase&) = delete;
    GemmBenchCase& operator=(const GemmBenchCase&) = delete;

    void run(GemmImpl impl, int threads, const GemmOptions& options);
    const GemmReport& last_report() const { return report_; }
    // ||C_dfp16 - C_fp32|| / ||C_fp32|| (Frobenius) of the last DFP16 and FP32 runs.
    double dfp16_relative_error() const;
    double flops() const { return 2.0 * static_cast<double>(shape_.m * shape_.n * shape_.k); }

  private:
    struct OneDnn;
    GemmShape shape_;
    std::vector<float> a_, b_, c_f32_, c_dfp_;
    std::vector<int16_t> a16_, b16_;
    std::vector<int8_t> a8_, b8_, a_mx_, b_mx_;
    std::vector<int> ea_mx_, eb_mx_;
    int ea16_ = 0, eb16_ = 0, ea8_ = 0, eb8_ = 0;
    GemmReport report_;
    std::unique_ptr<OneDnn> dnnl_;
};

struct GemmBenchRecord {
    GemmShape shape;
    int threads = 1;
    double dfp16_gflops = 0, dfp8_gflops = 0, onednn_fp32_gflops = 0, onednn_bf16_gflops = 0;
    double mxint8_gflops = 0, onednn_s8_gflops = 0;
    double dfp16_rel_error = 0;
    int64_t dfp16_min_chain_pairs = 0;
    std::string dfp16_kernel;
    // The oneDNN implementations this CPU lacks and oneDNN's reason, e.g. bf16 matmul without
    // AVX-512: their GFLOP/s are 0 (not measured).
    std::string onednn_unavailable;
};

struct GemmBenchConfig {
    std::vector<GemmShape> shapes = default_gemm_shapes();
    std::vector<int> threads = {1, 2};
    int repetitions = 5;         // samples per implementation; the median is reported
    double min_sample_s = 0.02;  // each sample repeats the GEMM until this much time has passed
    bool with_dfp8 = true;       // and MXINT8 and oneDNN int8
    GemmOptions options;         // DFP16 options (defaults: proven overflow rule, default shift)
};

// Runs every shape x thread count, the implementations interleaved within each repetition so that
// machine noise hits them alike. `progress` (may be null) is called after each record.
std::vector<GemmBenchRecord> run_gemm_bench(const GemmBenchConfig& config,
                                            void (*progress)(const GemmBenchRecord&) = nullptr);

}  // namespace dfp::bench
