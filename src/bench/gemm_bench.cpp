#include "bench/gemm_bench.hpp"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <sstream>

#include "base/error.hpp"
#include "bench/timing.hpp"

namespace dfp::bench {

using namespace kernels;

std::vector<GemmShape> default_gemm_shapes() {
    std::vector<GemmShape> out{{1024, 1024, 1024, Op::n, Op::n, "gemm"}};
    // FPROP C[Kout x NPQ] = W[Kout x CRS] * X[CRS x NPQ]; BPROP dX[CRS x NPQ] = W^T dY;
    // WTGRAD dW[Kout x CRS] = dY[Kout x NPQ] X^T.
    const int64_t conv[][3] = {
        {64, 25088, 576}, {256, 25088, 64}, {128, 6272, 1152}, {256, 1568, 2304}, {512, 392, 4608}};
    for (const auto& s : conv) {
        const int64_t kout = s[0], npq = s[1], crs = s[2];
        out.push_back({kout, npq, crs, Op::n, Op::n, "fprop"});
        out.push_back({crs, npq, kout, Op::t, Op::n, "bprop"});
        out.push_back({kout, crs, npq, Op::n, Op::t, "wtgrad"});
    }
    out.push_back({1000, 8, 2048, Op::n, Op::n, "gemm"});
    return out;
}

GemmShape parse_gemm_shape(const std::string& text) {
    GemmShape s{0, 0, 0, Op::n, Op::n, "gemm"};
    std::stringstream in(text);
    std::string part;
    std::vector<std::string> parts;
    while (std::getline(in, part, ',')) parts.push_back(part);
    auto bad = [&] {
        return Error("--shape '" + text + "': expected M,N,K or M,N,K,XY with X, Y in {N, T}");
    };
    if (parts.size() != 3 && parts.size() != 4) throw bad();
    try {
        s.m = std::stoll(parts[0]);
        s.n = std::stoll(parts[1]);
        s.k = std::stoll(parts[2]);
    } catch (const std::exception&) {
        throw bad();
    }
    if (s.m <= 0 || s.n <= 0 || s.k <= 0) throw bad();
    if (parts.size() == 4) {
        const std::string& ops = parts[3];
        if (ops.size() != 2 || (ops[0] != 'N' && ops[0] != 'T') || (ops[1] != 'N' && ops[1] != 'T'))
            throw bad();
        s.op_a = ops[0] == 'T' ? Op::t : Op::n;
        s.op_b = ops[1] == 'T' ? Op::t : Op::n;
    }
    return s;
}

const char* impl_name(GemmImpl impl) {
    switch (impl) {
        case GemmImpl::dfp16:
            return "dfp16";
        case GemmImpl::dfp8:
            return "dfp8";
        case GemmImpl::onednn_fp32:
            return "onednn_fp32";
        case GemmImpl::onednn_bf16:
            return "onednn_bf16";
        case GemmImpl::mxint8:
            return "mxint8";
        case GemmImpl::onednn_s8:
            return "onednn_s8";
    }
    return "?";
}

namespace {

// The paper's exponent rule with s = 0 for P-bit mantissas: the largest magnitude lands in
// [2^(P-2), 2^(P-1)); round half to even; clamp to +-(2^(P-1) - 1).
template <typename T>
std::vector<T> quantize(const std::vector<float>& f, int bits, int* exponent) {
    float mx = 0;
    for (float x : f) mx = std::max(mx, std::abs(x));
    *exponent = static_cast<int>(std::floor(std::log2(mx))) - (bits - 2);
    const float lim = static_cast<float>((1 << (bits - 1)) - 1);
    std::vector<T> out(f.size());
    for (size_t i = 0; i < f.size(); ++i)
        out[i] =
            static_cast<T>(std::clamp(std::nearbyint(std::ldexp(f[i], -*exponent)), -lim, lim));
    return out;
}

// MXINT8 of the r x c matrix X(i, k) = f[k_contiguous ? i * ld + k : k * ld + i] (op(A) rows or
// op(B) columns, K along k): the rule above per block of 32 K values, exponents [i][block].
std::vector<int8_t> quantize_mx(const std::vector<float>& f, int64_t rows, int64_t k, int64_t ld,
                                bool k_contiguous, std::vector<int>& exponents) {
    constexpr int64_t kBlock = 32;
    const int64_t blocks = (k + kBlock - 1) / kBlock;
    std::vector<int8_t> out(f.size());
    exponents.assign(static_cast<size_t>(rows * blocks), 0);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t b = 0; b < blocks; ++b) {
            auto at = [&](int64_t kk) {
                return static_cast<size_t>(k_contiguous ? i * ld + kk : kk * ld + i);
            };
            const int64_t k1 = std::min(k, (b + 1) * kBlock);
            float mx = 0;
            for (int64_t kk = b * kBlock; kk < k1; ++kk) mx = std::max(mx, std::abs(f[at(kk)]));
            const int e = mx > 0 ? static_cast<int>(std::floor(std::log2(mx))) - 6 : 0;
            exponents[static_cast<size_t>(i * blocks + b)] = e;
            for (int64_t kk = b * kBlock; kk < k1; ++kk)
                out[at(kk)] = static_cast<int8_t>(
                    std::clamp(std::nearbyint(std::ldexp(f[at(kk)], -e)), -127.0f, 127.0f));
        }
    return out;
}

// bf16 by round-to-nearest-even of the FP32 bits (no NaNs here).
std::vector<uint16_t> to_bf16(const std::vector<float>& f) {
    std::vector<uint16_t> out(f.size());
    for (size_t i = 0; i < f.size(); ++i) {
        uint32_t u;
        std::memcpy(&u, &f[i], sizeof u);
        u += 0x7fff + ((u >> 16) & 1);
        out[i] = static_cast<uint16_t>(u >> 16);
    }
    return out;
}

}  // namespace

// oneDNN bf16 and int8 matmuls: one primitive per thread count (oneDNN picks blocking at
// creation).
struct GemmBenchCase::OneDnn {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    std::vector<uint16_t> a, b;
    dnnl::memory ma, mb, mc, ma8, mb8;
    int threads = 0, threads8 = 0;
    dnnl::matmul prim, prim8;
};

GemmBenchCase::GemmBenchCase(const GemmShape& shape, uint32_t seed)
    : shape_(shape), dnnl_(new OneDnn) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    a_.resize(static_cast<size_t>(shape.m * shape.k));
    b_.resize(static_cast<size_t>(shape.k * shape.n));
    for (auto& x : a_) x = d(rng);
    for (auto& x : b_) x = d(rng);
    c_f32_.assign(static_cast<size_t>(shape.m * shape.n), 0.0f);
    c_dfp_ = c_f32_;
    a16_ = quantize<int16_t>(a_, 16, &ea16_);
    b16_ = quantize<int16_t>(b_, 16, &eb16_);
    a8_ = quantize<int8_t>(a_, 8, &ea8_);
    b8_ = quantize<int8_t>(b_, 8, &eb8_);
    dnnl_->a = to_bf16(a_);
    dnnl_->b = to_bf16(b_);
    using dt = dnnl::memory::data_type;
    const int64_t m = shape.m, n = shape.n, k = shape.k;
    const dnnl::memory::dims a_strides =
        shape.op_a == Op::n ? dnnl::memory::dims{k, 1} : dnnl::memory::dims{1, m};
    const dnnl::memory::dims b_strides =
        shape.op_b == Op::n ? dnnl::memory::dims{n, 1} : dnnl::memory::dims{1, k};
    const dnnl::memory::desc da({m, k}, dt::bf16, a_strides), db({k, n}, dt::bf16, b_strides);
    const dnnl::memory::desc da8({m, k}, dt::s8, a_strides), db8({k, n}, dt::s8, b_strides);
    const dnnl::memory::desc dc({m, n}, dt::f32, dnnl::memory::dims{n, 1});
    dnnl_->ma = dnnl::memory(da, dnnl_->engine, dnnl_->a.data());
    dnnl_->mb = dnnl::memory(db, dnnl_->engine, dnnl_->b.data());
    dnnl_->ma8 = dnnl::memory(da8, dnnl_->engine, a8_.data());
    dnnl_->mb8 = dnnl::memory(db8, dnnl_->engine, b8_.data());
    const int64_t lda = shape.op_a == Op::t ? m : k, ldb = shape.op_b == Op::t ? k : n;
    a_mx_ = quantize_mx(a_, m, k, lda, shape.op_a == Op::n, ea_mx_);
    b_mx_ = quantize_mx(b_, n, k, ldb, shape.op_b == Op::t, eb_mx_);
    dnnl_->mc = dnnl::memory(dc, dnnl_->engine, c_dfp_.data());
}

GemmBenchCase::~GemmBenchCase() = default;

void GemmBenchCase::run(GemmImpl impl, int threads, const GemmOptions& options) {
    const int64_t m = shape_.m, n = shape_.n, k = shape_.k;
    const bool ta = shape_.op_a == Op::t, tb = shape_.op_b == Op::t;
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    GemmOptions opt = options;
    opt.threads = threads;
    switch (impl) {
        case GemmImpl::dfp16: {
            const DfpMatrix<int16_t> a{a16_.data(), lda, shape_.op_a, {&ea16_, 1}};
            const DfpMatrix<int16_t> b{b16_.data(), ldb, shape_.op_b, {&eb16_, 1}};
            report_ = gemm_s16s16f32(m, n, k, a, b, c_dfp_.data(), n, opt);
            break;
        }
        case GemmImpl::dfp8: {
            const DfpMatrix<int8_t> a{a8_.data(), lda, shape_.op_a, {&ea8_, 1}};
            const DfpMatrix<int8_t> b{b8_.data(), ldb, shape_.op_b, {&eb8_, 1}};
            gemm_s8s8f32(m, n, k, a, b, c_dfp_.data(), n, opt);  // the next DFP16 run overwrites it
            break;
        }
        case GemmImpl::mxint8: {
            DfpMatrix<int8_t> a{a_mx_.data(), lda, shape_.op_a, ea_mx_};
            DfpMatrix<int8_t> b{b_mx_.data(), ldb, shape_.op_b, eb_mx_};
            a.k_block = b.k_block = 32;
            gemm_s8s8f32(m, n, k, a, b, c_dfp_.data(), n, opt);
            break;
        }
        case GemmImpl::onednn_s8: {
            omp_set_num_threads(threads);
            if (dnnl_->threads8 != threads) {
                dnnl::primitive_attr attr;
                attr.set_output_scales(0, {std::ldexp(1.0f, ea8_ + eb8_)});
                const dnnl::matmul::desc desc(dnnl_->ma8.get_desc(), dnnl_->mb8.get_desc(),
                                              dnnl_->mc.get_desc());
                dnnl_->prim8 =
                    dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, dnnl_->engine));
                dnnl_->threads8 = threads;
            }
            dnnl_->prim8.execute(dnnl_->stream, {{DNNL_ARG_SRC, dnnl_->ma8},
                                                 {DNNL_ARG_WEIGHTS, dnnl_->mb8},
                                                 {DNNL_ARG_DST, dnnl_->mc}});
            dnnl_->stream.wait();
            break;
        }
        case GemmImpl::onednn_fp32: {
            omp_set_num_threads(threads);
            if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a_.data(), lda, b_.data(),
                           ldb, 0.0f, c_f32_.data(), n) != dnnl_success)
                throw Error("bench: dnnl_sgemm failed");
            break;
        }
        case GemmImpl::onednn_bf16: {
            omp_set_num_threads(threads);
            if (dnnl_->threads != threads) {  // oneDNN sizes its blocking for the thread count
                const dnnl::matmul::desc desc(dnnl_->ma.get_desc(), dnnl_->mb.get_desc(),
                                              dnnl_->mc.get_desc());
                dnnl_->prim = dnnl::matmul(dnnl::matmul::primitive_desc(desc, dnnl_->engine));
                dnnl_->threads = threads;
            }
            dnnl_->prim.execute(dnnl_->stream, {{DNNL_ARG_SRC, dnnl_->ma},
                                                {DNNL_ARG_WEIGHTS, dnnl_->mb},
                                                {DNNL_ARG_DST, dnnl_->mc}});
            dnnl_->stream.wait();
            break;
        }
    }
}

double GemmBenchCase::dfp16_relative_error() const {
    double num = 0, den = 0;
    for (size_t i = 0; i < c_f32_.size(); ++i) {
        const double d = static_cast<double>(c_dfp_[i]) - c_f32_[i];
        num += d * d;
        den += static_cast<double>(c_f32_[i]) * c_f32_[i];
    }
    return den > 0 ? std::sqrt(num / den) : 0.0;
}

namespace {

// Seconds per GEMM of one sample: the call repeated `calls` times.
double sample(GemmBenchCase& bc, GemmImpl impl, int threads, const GemmOptions& opt, int calls) {
    return seconds_per_call([&] { bc.run(impl, threads, opt); }, calls);
}

}  // namespace

std::vector<GemmBenchRecord> run_gemm_bench(const GemmBenchConfig& config,
                                            void (*progress)(const GemmBenchRecord&)) {
    if (config.repetitions < 1) throw Error("--reps: must be >= 1");
    std::vector<GemmImpl> impls{GemmImpl::dfp16, GemmImpl::onednn_fp32, GemmImpl::onednn_bf16};
    if (config.with_dfp8)
        impls.insert(impls.end(), {GemmImpl::dfp8, GemmImpl::mxint8, GemmImpl::onednn_s8});
    std::vector<GemmBenchRecord> out;
    const int saved_threads = omp_get_max_threads();
    uint32_t seed = 1;
    std::string unavailable;
    for (const GemmShape& shape : config.shapes) {
        GemmBenchCase bc(shape, seed++);
        for (int threads : config.threads) {
            if (threads < 1) throw Error("--threads: must be >= 1");
            // Warm-up (page faults, primitive creation) and the number of calls per sample.
            std::vector<int> calls;
            for (size_t i = 0; i < impls.size();) {
                try {
                    bc.run(impls[i], threads, config.options);
                } catch (const dnnl::error& e) {  // a oneDNN matmul this CPU has not
                    unavailable += std::string(unavailable.empty() ? "" : "; ") +
                                   impl_name(impls[i]) + ": " + e.what();
                    impls.erase(impls.begin() + static_cast<std::ptrdiff_t>(i));
                    continue;
                }
                const double t = sample(bc, impls[i], threads, config.options, 1);
                calls.push_back(calls_per_sample(t, config.min_sample_s));
                ++i;
            }
            std::vector<std::vector<double>> times(impls.size());
            for (int r = 0; r < config.repetitions; ++r)
                for (size_t i = 0; i < impls.size(); ++i)
                    times[i].push_back(sample(bc, impls[i], threads, config.options, calls[i]));
            // Accuracy of the result just computed: DFP16 against FP32 on the same floats.
            bc.run(GemmImpl::dfp16, threads, config.options);
            bc.run(GemmImpl::onednn_fp32, threads, config.options);
            GemmBenchRecord rec;
            rec.shape = shape;
            rec.threads = threads;
            auto gflops = [&](GemmImpl impl) {
                for (size_t i = 0; i < impls.size(); ++i)
                    if (impls[i] == impl) return bc.flops() / median(times[i]) * 1e-9;
                return 0.0;
            };
            rec.dfp16_gflops = gflops(GemmImpl::dfp16);
            rec.dfp8_gflops = gflops(GemmImpl::dfp8);
            rec.mxint8_gflops = gflops(GemmImpl::mxint8);
            rec.onednn_s8_gflops = gflops(GemmImpl::onednn_s8);
            rec.onednn_fp32_gflops = gflops(GemmImpl::onednn_fp32);
            rec.onednn_bf16_gflops = gflops(GemmImpl::onednn_bf16);
            rec.dfp16_rel_error = bc.dfp16_relative_error();
            rec.dfp16_min_chain_pairs = bc.last_report().min_chain_pairs;
            rec.dfp16_kernel = bc.last_report().kernel;
            rec.onednn_unavailable = unavailable;
            out.push_back(rec);
            if (progress != nullptr) progress(rec);
        }
    }
    omp_set_num_threads(saved_threads);
    return out;
}

}  // namespace dfp::bench
