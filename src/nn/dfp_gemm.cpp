#include "nn/dfp_gemm.hpp"

#include <string_view>

#include "base/error.hpp"
#include "format/quantize.hpp"
#include "format/rng.hpp"
#include "nn/profile.hpp"

namespace dfp::nn {

namespace {

using kernels::Op;

enum class Side { a, b };

// The GEMM view of m as operand `side` with `op`. The GEMM scales row i of op(A) by 2^eA_i and
// column j of op(B) by 2^eB_j, so an axis format fits when its axis is the stored dimension that
// becomes those rows (A) or columns (B); an int8 block format fits when its blocks run along K.
template <class M>
kernels::DfpMatrix<M> operand(const Layer& layer, const char* pass, const DfpOperand<M>& x,
                              Side side, Op op) {
    const QuantMatrix<M>& m = x.m;
    const Format& f = m.q.format;
    const int scaled_axis = (side == Side::a) == (op == Op::n) ? 0 : 1;
    const bool k_blocks = sizeof(M) == 1 && f.granularity == Granularity::block &&
                          scaled_axis == 0 && x.source.fill == nullptr;
    // A sourced matrix has other rows and columns than m: only a per-tensor exponent carries over.
    const bool fits =
        f.granularity == Granularity::tensor || k_blocks ||
        (f.granularity == Granularity::axis && f.axis == scaled_axis && x.source.fill == nullptr);
    if (!fits)
        layer.fail(std::string(pass) + ": tensor '" + m.name + "' in format " + f.name() +
                   " has exponents the GEMM cannot apply (it scales whole rows of op(A) and" +
                   " columns of op(B), or int8 blocks along K); use one exponent per tensor or" +
                   " axis " + std::to_string(scaled_axis) + " here");
    kernels::DfpMatrix<M> out{m.q.mantissas.data(), x.cols, op, m.q.exponents, x.source};
    if (k_blocks) out.k_block = f.block;
    return out;
}

}  // namespace

template <class M>
void QuantMatrix<M>::quantize(const float* src, std::int64_t rows, std::int64_t cols,
                              const precision::TensorFormat& format, std::uint64_t iteration,
                              const float* keep) {
    const ProfileScope scope(Section::quantization);
    source = nullptr;
    produced = false;
    quantize_into(src, {std::size_t(rows), std::size_t(cols)}, format.format,
                  options(format, iteration), name, q, active_isa(), keep);
    if (keep == nullptr) mark_source(src, format, iteration);
}

template <class M>
void QuantMatrix<M>::mark_source(const float* src, const precision::TensorFormat& format,
                                 std::uint64_t iteration) {
    source = src;
    source_format = format;
    source_iteration = iteration;
}

template <class M>
QuantizeOptions QuantMatrix<M>::options(const precision::TensorFormat& format,
                                        std::uint64_t iteration) const {
    QuantizeOptions o = format.quantize;
    o.seed = rng_key(o.seed ^ name_seed(name), static_cast<std::uint32_t>(iteration)) |
             std::uint64_t{rng_key(o.seed, static_cast<std::uint32_t>(iteration >> 32))} << 32;
    // Activations and gradients change little from step to step: last step's exponent is a good
    // guess, which saves the quantizer a pass over src.
    if (q.exponents.size() == 1) o.expected_exponent = q.exponents[0];
    return o;
}

template <class M>
void QuantMatrix<M>::begin_parts(std::optional<PartwiseQuantizer<M>>& parts, std::int64_t rows,
                                 std::int64_t cols, const precision::TensorFormat& format,
                                 std::uint64_t iteration) {
    source = nullptr;
    produced = false;
    const QuantizeOptions o = options(format, iteration);
    if (usable_guess(format.format, o))
        parts.emplace(Shape{std::size_t(rows), std::size_t(cols)}, format.format, o, name, q);
}

template <class M>
bool QuantMatrix<M>::end_parts(PartwiseQuantizer<M>& parts, const float* src,
                               const precision::TensorFormat& format, std::uint64_t iteration) {
    produced = parts.finish();
    if (produced) mark_source(src, format, iteration);
    return produced;
}

template <class M>
bool QuantMatrix<M>::take_produced(const float* src, std::int64_t rows, std::int64_t cols,
                                   const precision::TensorFormat& format, std::uint64_t iteration) {
    const bool ok = produced && holds(src, rows, cols, format, iteration);
    produced = false;
    return ok;
}

template <class M>
bool QuantMatrix<M>::holds(const float* src, std::int64_t rows, std::int64_t cols,
                           const precision::TensorFormat& format, std::uint64_t iteration) const {
    const Format &a = source_format.format, &b = format.format;
    const QuantizeOptions &x = source_format.quantize, &y = format.quantize;
    return source == src && source_iteration == iteration &&
           q.shape == Shape{std::size_t(rows), std::size_t(cols)} && a.bits == b.bits &&
           a.granularity == b.granularity && a.axis == b.axis && a.block == b.block &&
           x.rounding == y.rounding && x.shift == y.shift && x.seed == y.seed;
}

template <class M>
void QuantMatrix<M>::quantize_transposed(const float* src, std::int64_t rows, std::int64_t cols,
                                         const precision::TensorFormat& format,
                                         std::uint64_t iteration) {
    {
        const ProfileScope scope(Section::quantization);
        transposed.resize(std::size_t(rows * cols));
        constexpr std::int64_t kTile = 32;  // a tile of each matrix stays in L1
#pragma omp parallel for schedule(static) if (rows * cols >= kMinParallelElements)
        for (std::int64_t r0 = 0; r0 < rows; r0 += kTile)
            for (std::int64_t c0 = 0; c0 < cols; c0 += kTile)
                for (std::int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
                    for (std::int64_t c = c0; c < std::min(cols, c0 + kTile); ++c)
                        transposed[std::size_t(c * rows + r)] = src[r * cols + c];
    }
    quantize(transposed.data(), cols, rows, format, iteration);
}

template <class M>
void dfp_gemm(const Layer& layer, const char* pass, const DfpOperand<M>& a, Op op_a,
              const DfpOperand<M>& b, Op op_b, float* c, bool accumulate, const float* bias,
              bool relu, std::function<void(std::int64_t, std::int64_t)> rows_done) {
    const std::int64_t m = op_a == Op::n ? a.rows : a.cols;
    const std::int64_t k = op_a == Op::n ? a.cols : a.rows;
    const std::int64_t n = op_b == Op::n ? b.cols : b.rows;
    const std::int64_t k_b = op_b == Op::n ? b.rows : b.cols;
    if (k != k_b)
        layer.fail(std::string(pass) + ": '" + a.m.name + "' and '" + b.m.name +
                   "' disagree on the inner dimension (" + std::to_string(k) + " vs " +
                   std::to_string(k_b) + ")");
    const auto da = operand(layer, pass, a, Side::a, op_a);
    const auto db = operand(layer, pass, b, Side::b, op_b);
    kernels::GemmOptions options;
    options.accumulate = accumulate;
    options.bias = bias;
    options.relu = relu;
    options.rows_done = std::move(rows_done);
    // A convolution's WTGRAD is this one call; the rest of its backward (BPROP GEMMs, a strided
    // BPROP's scatter) stays in the layer's own section (nn/profile.hpp).
    Profiler* const profiler = active_profiler();
    const bool conv_wtgrad = profiler && std::string_view(pass) == "wtgrad" &&
                             std::string_view(layer.kind()) == "conv2d";
    const ProfileScope scope(conv_wtgrad ? profiler : nullptr, Section::conv_wtgrad);
    try {
        if constexpr (sizeof(M) == 2)
            kernels::gemm_s16s16f32(m, n, k, da, db, c, n, options);
        else
            kernels::gemm_s8s8f32(m, n, k, da, db, c, n, options);
    } catch (const Error& e) {
        layer.fail(std::string(pass) + " GEMM of '" + a.m.name + "' and '" + b.m.name +
                   "': " + e.what());
    }
}

bool block_scaled(const precision::LayerPrecision& p) {
    return p.compute == precision::Compute::dfp8 &&
           (p.weights.format.granularity == Granularity::block ||
            p.activations.format.granularity == Granularity::block ||
            p.gradients.format.granularity == Granularity::block);
}

template struct QuantMatrix<std::int16_t>;
template struct QuantMatrix<std::int8_t>;
template void dfp_gemm(const Layer&, const char*, const DfpOperand<std::int16_t>&, Op,
                       const DfpOperand<std::int16_t>&, Op, float*, bool, const float*, bool,
                       std::function<void(std::int64_t, std::int64_t)>);
template void dfp_gemm(const Layer&, const char*, const DfpOperand<std::int8_t>&, Op,
                       const DfpOperand<std::int8_t>&, Op, float*, bool, const float*, bool,
                       std::function<void(std::int64_t, std::int64_t)>);

}  // namespace dfp::nn
