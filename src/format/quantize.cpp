#include "format/quantize.hpp"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "base/error.hpp"
#include "format/quantize_kernels.hpp"

namespace dfp {
namespace {

// Runs smaller than this in total are not worth waking the thread team for.
constexpr std::size_t kParallelMinElements = std::size_t{1} << 15;
// Tensors this large (16 MiB of FP32) are beyond the caches: their mantissas are written with
// non-temporal stores (QuantizeRun::stream).
constexpr std::size_t kStreamMinElements = std::size_t{1} << 22;

template <class M>
constexpr int storage_bits() {
    return 8 * static_cast<int>(sizeof(M));
}

// Names the first element of the run that is non-finite and kept (QuantizeRun::keep).
[[noreturn]] void throw_non_finite(std::string_view name, const float* src, const float* keep,
                                   const Run& run) {
    std::size_t i = run.offset;
    while (i < run.offset + run.count && (std::isfinite(src[i]) || (keep && !(keep[i] > 0.0f))))
        ++i;
    throw Error("tensor '" + std::string(name) + "': element " + std::to_string(i) + " is " +
                (std::isnan(src[i]) ? "NaN" : "Inf") + "; cannot quantize a non-finite value");
}

// Returns max_abs_bits of the run (see QuantizeKernels).
template <class M>
std::uint32_t quantize_run(const QuantizeKernels& k, const float* src, M* dst, std::size_t n,
                           const QuantizeRun& r) {
    if constexpr (sizeof(M) == 2)
        return k.quantize_s16(src, dst, n, r);
    else
        return k.quantize_s8(src, dst, n, r);
}

template <class M>
void dequantize_run(const QuantizeKernels& k, const M* src, float* dst, std::size_t n, Pow2 scale) {
    if constexpr (sizeof(M) == 2)
        k.dequantize_s16(src, dst, n, scale);
    else
        k.dequantize_s8(src, dst, n, scale);
}

// Throws dfp::Error unless `format` and options.shift fit the shape and M's storage.
template <class M>
void validate(const Shape& shape, const Format& format, const QuantizeOptions& options,
              std::string_view name) {
    const std::string what = "tensor '" + std::string(name) + "'";
    format.validate(shape, what);
    if (format.bits > storage_bits<M>())
        throw Error(what + ": " + std::to_string(format.bits) + "-bit mantissas do not fit int" +
                    std::to_string(storage_bits<M>()) + " storage");
    if (options.shift < 0 || options.shift > format.bits - 2)
        throw Error(what + ": shift must be 0.." + std::to_string(format.bits - 2) + " for " +
                    std::to_string(format.bits) + "-bit mantissas, got " +
                    std::to_string(options.shift));
}

}  // namespace

std::optional<int> usable_guess(const Format& format, const QuantizeOptions& options) {
    const std::optional<int>& e = options.expected_exponent;
    return format.granularity == Granularity::tensor && e >= kMinExponent && e <= kMaxExponent
               ? e
               : std::nullopt;
}

template <class M>
void quantize_into(const float* src, const Shape& shape, const Format& format,
                   const QuantizeOptions& options, std::string_view name, DfpTensor<M>& dst,
                   Isa isa, const float* keep) {
    validate<M>(shape, format, options, name);
    const BlockLayout layout(shape, format);
    const QuantizeKernels& k = quantize_kernels(isa);
    // The largest kept magnitude of count elements at offset.
    const auto max_bits = [&](std::size_t offset, std::size_t count) {
        return keep ? k.max_abs_bits_kept(src + offset, keep + offset, count)
                    : k.max_abs_bits(src + offset, count);
    };
    // QuantizeRun::keep of the run at offset.
    const auto kept_from = [keep](std::size_t offset) -> const float* {
        return keep ? keep + offset : nullptr;
    };
    const std::size_t numel = shape_numel(shape);
    const auto runs = static_cast<std::int64_t>(layout.runs());
    const bool parallel = numel >= kParallelMinElements;
    // Per tensor only: its runs are long (a streaming store of part of a line is slow).
    const bool stream = numel >= kStreamMinElements && format.granularity == Granularity::tensor;
    dst.shape = shape;
    dst.format = format;
    dst.mantissas.resize(numel);
    dst.exponents.assign(layout.exponents(), 0);

    const auto max_mantissa = static_cast<float>(format.max_mantissa());
    if (format.granularity == Granularity::block) {
        // Each block's largest magnitude, exponent and mantissas in one visit while the block is
        // in L1, rows in parallel: blocks are short, so per-block bookkeeping (a second pass, the
        // layout's divisions) would cost more than the arithmetic.
        const std::size_t row_len = shape.back(), block = static_cast<std::size_t>(format.block);
        const std::size_t per_row = (row_len + block - 1) / block;
        const auto rows = static_cast<std::int64_t>(row_len == 0 ? 0 : numel / row_len);
        bool non_finite = false;
#pragma omp parallel for schedule(static) if (parallel) reduction(|| : non_finite)
        for (std::int64_t row = 0; row < rows; ++row)
            for (std::size_t j = 0; j < per_row; ++j) {
                const std::size_t offset = std::size_t(row) * row_len + j * block;
                const std::size_t count = std::min(block, row_len - j * block);
                const std::uint32_t mx = max_bits(offset, count);
                if (mx >= kNonFiniteBits) {
                    non_finite = true;
                    continue;
                }
                const int e = shared_exponent(std::bit_cast<float>(mx), format.bits, options.shift);
                dst.exponents[std::size_t(row) * per_row + j] = e;
                const QuantizeRun r{pow2(-e), max_mantissa, options.rounding, options.seed,
                                    offset,   false,        kept_from(offset)};
                quantize_run(k, src + offset, dst.mantissas.data() + offset, count, r);
            }
        if (non_finite)  // name the first non-finite element
            for (std::int64_t i = 0; i < runs; ++i) {
                const Run run = layout.run(static_cast<std::size_t>(i));
                if (max_bits(run.offset, run.count) >= kNonFiniteBits)
                    throw_non_finite(name, src, keep, run);
            }
        return;
    }

    // Pass 1: the largest magnitude of every run, then of every exponent's block. With an
    // expected exponent, each run is also rounded with it in the same reads.
    std::vector<std::uint32_t> run_max(layout.runs());
    const std::optional<int> guess = usable_guess(format, options);
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t i = 0; i < runs; ++i) {
        const Run run = layout.run(static_cast<std::size_t>(i));
        run_max[i] =
            guess ? quantize_run(k, src + run.offset, dst.mantissas.data() + run.offset, run.count,
                                 {pow2(-*guess), max_mantissa, options.rounding, options.seed,
                                  run.offset, stream, kept_from(run.offset)})
                  : max_bits(run.offset, run.count);
    }
    std::vector<std::uint32_t> block_max(layout.exponents(), 0);
    for (std::int64_t i = 0; i < runs; ++i) {
        const Run run = layout.run(static_cast<std::size_t>(i));
        if (run_max[i] >= kNonFiniteBits) throw_non_finite(name, src, keep, run);
        block_max[run.exponent] = std::max(block_max[run.exponent], run_max[i]);
    }
    for (std::size_t e = 0; e < block_max.size(); ++e)
        dst.exponents[e] =
            shared_exponent(std::bit_cast<float>(block_max[e]), format.bits, options.shift);
    if (guess && dst.exponents[0] == *guess) return;

    // Pass 2: round and clamp.
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t i = 0; i < runs; ++i) {
        const Run run = layout.run(static_cast<std::size_t>(i));
        const QuantizeRun r{pow2(-dst.exponents[run.exponent]),
                            max_mantissa,
                            options.rounding,
                            options.seed,
                            run.offset,
                            stream,
                            kept_from(run.offset)};
        quantize_run(k, src + run.offset, dst.mantissas.data() + run.offset, run.count, r);
    }
}

template <class M>
PartwiseQuantizer<M>::PartwiseQuantizer(const Shape& shape, const Format& format,
                                        const QuantizeOptions& options, std::string_view name,
                                        DfpTensor<M>& dst, Isa isa)
    : kernels_(quantize_kernels(isa)), dst_(dst), options_(options) {
    validate<M>(shape, format, options, name);
    const std::optional<int> guess = usable_guess(format, options);
    if (!guess)
        throw Error("tensor '" + std::string(name) +
                    "': quantizing part by part needs one exponent per tensor and a guess of it");
    exponent_ = *guess;
    const std::size_t numel = shape_numel(shape);
    stream_ = numel >= kStreamMinElements;  // as quantize_into
    dst.shape = shape;
    dst.format = format;
    dst.mantissas.resize(numel);
    dst.exponents.assign(1, exponent_);
}

template <class M>
void PartwiseQuantizer<M>::part(const float* src, std::size_t offset, std::size_t count) {
    const QuantizeRun r{pow2(-exponent_),
                        static_cast<float>(dst_.format.max_mantissa()),
                        options_.rounding,
                        options_.seed,
                        offset,
                        stream_,
                        nullptr};
    const std::uint32_t bits =
        quantize_run(kernels_, src, dst_.mantissas.data() + offset, count, r);
    std::uint32_t seen = max_bits_.load(std::memory_order_relaxed);
    while (bits > seen && !max_bits_.compare_exchange_weak(seen, bits, std::memory_order_relaxed)) {
    }
}

template <class M>
bool PartwiseQuantizer<M>::finish() {
    const std::uint32_t bits = max_bits_.load();
    if (bits >= kNonFiniteBits) return false;
    dst_.exponents[0] =
        shared_exponent(std::bit_cast<float>(bits), dst_.format.bits, options_.shift);
    return dst_.exponents[0] == exponent_;
}

template <class M>
void dequantize(const DfpTensor<M>& src, float* dst, Isa isa) {
    const BlockLayout layout(src.shape, src.format);
    const QuantizeKernels& k = quantize_kernels(isa);
    const auto runs = static_cast<std::int64_t>(layout.runs());
#pragma omp parallel for schedule(static) if (src.mantissas.size() >= kParallelMinElements)
    for (std::int64_t i = 0; i < runs; ++i) {
        const Run run = layout.run(static_cast<std::size_t>(i));
        dequantize_run(k, src.mantissas.data() + run.offset, dst + run.offset, run.count,
                       pow2(src.exponents[run.exponent]));
    }
}

double QuantizeError::relative_error() const {
    return signal_energy > 0 ? std::sqrt(noise_energy / signal_energy)
                             : (noise_energy > 0 ? INFINITY : 0.0);
}

double QuantizeError::sqnr_db() const {
    if (noise_energy == 0) return std::numeric_limits<double>::infinity();
    return 10.0 * std::log10(signal_energy / noise_energy);
}

template <class M>
QuantizeError measure_error(const float* src, const DfpTensor<M>& q) {
    const BlockLayout layout(q.shape, q.format);
    const auto runs = static_cast<std::int64_t>(layout.runs());
    const double max_mantissa = q.format.max_mantissa();
    double signal = 0, noise = 0;
    std::size_t flushed = 0, clamped = 0;
#pragma omp parallel for schedule(static) reduction(+ : signal, noise, flushed, clamped)
    for (std::int64_t i = 0; i < runs; ++i) {
        const Run run = layout.run(static_cast<std::size_t>(i));
        const int e = q.exponents[run.exponent];
        for (std::size_t j = run.offset; j < run.offset + run.count; ++j) {
            const double x = src[j], v = std::ldexp(static_cast<double>(q.mantissas[j]), e);
            signal += x * x;
            noise += (x - v) * (x - v);
            flushed += (x != 0 && q.mantissas[j] == 0);
            clamped += std::fabs(x) > std::ldexp(max_mantissa, e);
        }
    }
    return {signal, noise, shape_numel(q.shape), flushed, clamped};
}

template void quantize_into(const float*, const Shape&, const Format&, const QuantizeOptions&,
                            std::string_view, DfpTensor<std::int16_t>&, Isa, const float*);
template void quantize_into(const float*, const Shape&, const Format&, const QuantizeOptions&,
                            std::string_view, DfpTensor<std::int8_t>&, Isa, const float*);
template class PartwiseQuantizer<std::int16_t>;
template class PartwiseQuantizer<std::int8_t>;
template void dequantize(const DfpTensor<std::int16_t>&, float*, Isa);
template void dequantize(const DfpTensor<std::int8_t>&, float*, Isa);
template QuantizeError measure_error(const float*, const DfpTensor<std::int16_t>&);
template QuantizeError measure_error(const float*, const DfpTensor<std::int8_t>&);

}  // namespace dfp
