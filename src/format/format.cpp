#include "format/format.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "base/error.hpp"
#include "format/dfp_tensor.hpp"

namespace dfp {

std::size_t shape_numel(const Shape& shape) {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
}

std::string shape_string(const Shape& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) s += ',';
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

void Format::validate(const Shape& shape, std::string_view what) const {
    const std::string at(what);
    if (bits < 2 || bits > 16)
        throw Error(at + ": mantissa bits must be 2..16, got " + std::to_string(bits));
    if (granularity == Granularity::axis &&
        (axis < 0 || static_cast<std::size_t>(axis) >= shape.size()))
        throw Error(at + ": exponent axis " + std::to_string(axis) + " is outside shape " +
                    shape_string(shape));
    if (granularity == Granularity::block && block < 1)
        throw Error(at + ": block size must be >= 1, got " + std::to_string(block));
}

std::string Format::name() const {
    std::string s = "dfp" + std::to_string(bits);
    if (granularity == Granularity::axis) s += "/axis" + std::to_string(axis);
    if (granularity == Granularity::block) s += "/block" + std::to_string(block);
    return s;
}

Format dfp16_tensor() {
    return Format{};
}
Format dfp8_tensor() {
    Format f;
    f.bits = 8;
    return f;
}

namespace {
constexpr Rounding kRoundings[] = {Rounding::nearest_even, Rounding::nearest_away,
                                   Rounding::truncate,     Rounding::biased,
                                   Rounding::stochastic,   Rounding::pseudo_stochastic};
}

const char* rounding_name(Rounding r) {
    switch (r) {
        case Rounding::nearest_even:
            return "nearest_even";
        case Rounding::nearest_away:
            return "nearest_away";
        case Rounding::truncate:
            return "truncate";
        case Rounding::biased:
            return "biased";
        case Rounding::stochastic:
            return "stochastic";
        case Rounding::pseudo_stochastic:
            return "pseudo_stochastic";
    }
    return "?";
}

Rounding parse_rounding(std::string_view name, std::string_view what) {
    for (Rounding r : kRoundings)
        if (name == rounding_name(r)) return r;
    throw Error(std::string(what) + ": unknown rounding mode '" + std::string(name) +
                "' (expected nearest_even, nearest_away, truncate, biased, stochastic or "
                "pseudo_stochastic)");
}

int shared_exponent(float max_abs, int bits, int shift) {
    if (max_abs == 0.0f) return 0;
    // floor(log2): the exponent field of a normal float; ilogb for subnormals.
    const std::uint32_t field = std::bit_cast<std::uint32_t>(max_abs) >> 23 & 0xff;
    const int log2 = field != 0 ? static_cast<int>(field) - 127 : std::ilogb(max_abs);
    return log2 - (bits - 2) + shift;
}

BlockLayout::BlockLayout(const Shape& shape, const Format& format)
    : kind_(format.granularity), numel_(shape_numel(shape)) {
    switch (kind_) {
        case Granularity::tensor:
            exponents_ = 1;
            runs_ = (numel_ + kTensorChunk - 1) / kTensorChunk;
            break;
        case Granularity::axis: {
            const auto a = static_cast<std::size_t>(format.axis);
            axis_len_ = shape[a];
            for (std::size_t d = a + 1; d < shape.size(); ++d) inner_ *= shape[d];
            exponents_ = axis_len_;
            runs_ = inner_ == 0 ? 0 : numel_ / inner_;
            break;
        }
        case Granularity::block: {
            row_len_ = shape.empty() ? 1 : shape.back();
            block_ = static_cast<std::size_t>(format.block);
            blocks_per_row_ = (row_len_ + block_ - 1) / block_;
            const std::size_t rows = row_len_ == 0 ? 0 : numel_ / row_len_;
            exponents_ = runs_ = rows * blocks_per_row_;
            break;
        }
    }
}

}  // namespace dfp
