#include "format/primitives.hpp"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "base/error.hpp"
#include "format/rounding.hpp"

namespace dfp {
namespace {

template <class A, class B>
void check_same_blocks(const DfpTensor<A>& a, const DfpTensor<B>& b, const char* op) {
    const Format &fa = a.format, &fb = b.format;
    const bool same_blocks = fa.granularity == fb.granularity &&
                             (fa.granularity != Granularity::axis || fa.axis == fb.axis) &&
                             (fa.granularity != Granularity::block || fa.block == fb.block);
    if (a.shape != b.shape || !same_blocks)
        throw Error(std::string(op) +
                    ": operands differ in shape or blocks: " + shape_string(a.shape) + " " +
                    fa.name() + " vs " + shape_string(b.shape) + " " + fb.name());
}

// Calls f(run) for every run of the tensor's layout.
template <class M, class F>
void for_each_run(const DfpTensor<M>& t, F&& f) {
    const BlockLayout layout(t.shape, t.format);
    for (std::size_t i = 0; i < layout.runs(); ++i) f(layout.run(i));
}

// Largest mantissa magnitude of every block.
template <class M>
std::vector<std::uint64_t> block_max_magnitude(const DfpTensor<M>& t) {
    std::vector<std::uint64_t> max(t.exponents.size(), 0);
    for_each_run(t, [&](const Run& run) {
        for (std::size_t j = run.offset; j < run.offset + run.count; ++j)
            max[run.exponent] =
                std::max(max[run.exponent], static_cast<std::uint64_t>(std::llabs(t.mantissas[j])));
    });
    return max;
}

std::int64_t signed_round_shift(std::int64_t v, int k, Rounding mode, std::uint32_t rand) {
    const auto mag = round_shift(static_cast<std::uint64_t>(std::llabs(v)), k, mode, rand);
    return v < 0 ? -static_cast<std::int64_t>(mag) : static_cast<std::int64_t>(mag);
}

}  // namespace

template <class M>
DfpWideTensor multiply(const DfpTensor<M>& a, const DfpTensor<M>& b) {
    check_same_blocks(a, b, "multiply");
    DfpWideTensor c{a.shape, a.format, AlignedVector<std::int32_t>(a.mantissas.size()), a.exponents};
    c.format.bits = a.format.bits + b.format.bits - 1;  // |m_a m_b| < 2^(ba-1) 2^(bb-1)
    for (std::size_t e = 0; e < c.exponents.size(); ++e) c.exponents[e] += b.exponents[e];
    for (std::size_t i = 0; i < c.mantissas.size(); ++i)
        c.mantissas[i] = static_cast<std::int32_t>(a.mantissas[i]) * b.mantissas[i];
    return c;
}

template <class M>
DfpWideTensor add(const DfpTensor<M>& a, const DfpTensor<M>& b, Rounding rounding,
                  std::uint64_t seed) {
    check_same_blocks(a, b, "add");
    const auto max_a = block_max_magnitude(a), max_b = block_max_magnitude(b);
    DfpWideTensor c{a.shape, a.format, AlignedVector<std::int32_t>(a.mantissas.size()), a.exponents};
    c.format.bits = std::max(a.format.bits, b.format.bits) + 1;
    for (std::size_t e = 0; e < c.exponents.size(); ++e)
        c.exponents[e] = max_a[e] == 0   ? b.exponents[e]
                         : max_b[e] == 0 ? a.exponents[e]
                                         : std::max(a.exponents[e], b.exponents[e]);
    for_each_run(c, [&](const Run& run) {
        const int e = c.exponents[run.exponent];
        const int ka = e - a.exponents[run.exponent], kb = e - b.exponents[run.exponent];
        for (std::size_t j = run.offset; j < run.offset + run.count; ++j) {
            // A zero operand is zero at any exponent, so a negative shift (from its ignored
            // exponent) is harmless: 0 << k is 0.
            const std::uint32_t rand = rounding == Rounding::stochastic ? random_bits(seed, j) : 0;
            const std::int64_t sum =
                signed_round_shift(a.mantissas[j], std::max(ka, 0), rounding, rand) +
                signed_round_shift(b.mantissas[j], std::max(kb, 0), rounding, rand);
            if (sum > std::numeric_limits<std::int32_t>::max() ||
                sum < std::numeric_limits<std::int32_t>::min())
                throw Error("add: the sum at element " + std::to_string(j) + " overflows INT32");
            c.mantissas[j] = static_cast<std::int32_t>(sum);
        }
    });
    return c;
}

template <class M>
DfpTensor<M> down_convert(const DfpWideTensor& x, int bits, const QuantizeOptions& options,
                          std::string_view name) {
    const std::string what = "down_convert of tensor '" + std::string(name) + "'";
    Format format = x.format;
    format.bits = bits;
    if (bits < 2 || bits > 8 * static_cast<int>(sizeof(M)))
        throw Error(what + ": target bits must be 2.." + std::to_string(8 * sizeof(M)) + ", got " +
                    std::to_string(bits));
    if (options.shift < 0 || options.shift > bits - 2)
        throw Error(what + ": shift must be 0.." + std::to_string(bits - 2) + ", got " +
                    std::to_string(options.shift));
    const auto max = block_max_magnitude(x);
    DfpTensor<M> y{x.shape, format, AlignedVector<M>(x.mantissas.size()), x.exponents};
    std::vector<int> shift(max.size());
    for (std::size_t e = 0; e < max.size(); ++e) {
        const int bit_length = std::bit_width(max[e]);
        shift[e] = std::max(0, bit_length - (bits - 1) + options.shift);
        y.exponents[e] = x.exponents[e] + shift[e];
    }
    const std::int64_t max_mantissa = format.max_mantissa();
    for_each_run(x, [&](const Run& run) {
        for (std::size_t j = run.offset; j < run.offset + run.count; ++j) {
            const std::uint32_t rand =
                options.rounding == Rounding::stochastic ? random_bits(options.seed, j) : 0;
            const std::int64_t v =
                signed_round_shift(x.mantissas[j], shift[run.exponent], options.rounding, rand);
            y.mantissas[j] = static_cast<M>(std::clamp(v, -max_mantissa, max_mantissa));
        }
    });
    return y;
}

std::vector<float> dequantize_wide(const DfpWideTensor& x) {
    std::vector<float> y(x.mantissas.size());
    for_each_run(x, [&](const Run& run) {
        for (std::size_t j = run.offset; j < run.offset + run.count; ++j)
            y[j] = static_cast<float>(
                std::ldexp(static_cast<double>(x.mantissas[j]), x.exponents[run.exponent]));
    });
    return y;
}

template DfpWideTensor multiply(const Dfp16Tensor&, const Dfp16Tensor&);
template DfpWideTensor multiply(const Dfp8Tensor&, const Dfp8Tensor&);
template DfpWideTensor add(const Dfp16Tensor&, const Dfp16Tensor&, Rounding, std::uint64_t);
template DfpWideTensor add(const Dfp8Tensor&, const Dfp8Tensor&, Rounding, std::uint64_t);
template DfpWideTensor add(const DfpWideTensor&, const DfpWideTensor&, Rounding, std::uint64_t);
template Dfp16Tensor down_convert(const DfpWideTensor&, int, const QuantizeOptions&,
                                  std::string_view);
template Dfp8Tensor down_convert(const DfpWideTensor&, int, const QuantizeOptions&,
                                 std::string_view);

}  // namespace dfp
