#include "precision/policy.hpp"

#include <algorithm>
#include <charconv>

#include "base/error.hpp"

namespace dfp::precision {
namespace {

Compute parse_compute(std::string_view s, std::string_view item) {
    if (s == "fp32") return Compute::fp32;
    if (s == "dfp16") return Compute::dfp16;
    if (s == "dfp8") return Compute::dfp8;
    throw Error("--precision item '" + std::string(item) + "': expected fp32, dfp16 or dfp8, got '" +
                std::string(s) + "'");
}

int parse_int(std::string_view s, std::string_view item) {
    int v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size())
        throw Error("--precision item '" + std::string(item) + "': '" + std::string(s) +
                    "' is not an integer");
    return v;
}

void set_key(TensorFormat& t, std::string_view key, std::string_view value, std::string_view item) {
    if (key == "bits") {
        t.format.bits = parse_int(value, item);
        if (t.format.bits < 2 || t.format.bits > 16)
            throw Error("--precision item '" + std::string(item) + "': bits must be 2..16");
    } else if (key == "granularity") {
        if (value == "tensor")
            t.format.granularity = Granularity::tensor;
        else if (value == "axis")
            t.format.granularity = Granularity::axis;
        else if (value == "block")
            t.format.granularity = Granularity::block;
        else
            throw Error("--precision item '" + std::string(item) +
                        "': granularity is tensor, axis or block");
    } else if (key == "axis") {
        t.format.axis = parse_int(value, item);
    } else if (key == "block") {
        t.format.block = parse_int(value, item);
        if (t.format.block < 1)
            throw Error("--precision item '" + std::string(item) + "': block must be >= 1");
    } else if (key == "shift") {
        t.quantize.shift = parse_int(value, item);
        if (t.quantize.shift < 0)
            throw Error("--precision item '" + std::string(item) + "': shift must be >= 0");
    } else if (key == "rounding") {
        t.quantize.rounding = parse_rounding(value, "--precision item '" + std::string(item) + "'");
    } else {
        throw Error("--precision item '" + std::string(item) +
                    "': unknown key (bits, granularity, axis, block, shift or rounding)");
    }
}

std::string tensor_describe(const TensorFormat& t) {
    return t.format.name() + " " + rounding_name(t.quantize.rounding) + " shift " +
           std::to_string(t.quantize.shift);
}

}  // namespace

const char* compute_name(Compute c) {
    switch (c) {
        case Compute::fp32:
            return "fp32";
        case Compute::dfp16:
            return "dfp16";
        case Compute::dfp8:
            return "dfp8";
    }
    return "?";
}

bool glob_match(std::string_view pattern, std::string_view name) {
    // Iterative wildcard match: remember the last '*' and retry from one character further.
    std::size_t p = 0, n = 0, star = std::string_view::npos, resume = 0;
    while (n < name.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = n;
        } else if (p < pattern.size() && pattern[p] == name[n]) {
            ++p;
            ++n;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            n = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

Policy Policy::fp32() {
    return Policy{};
}

Policy Policy::dfp16() {
    Policy p;
    p.base_.compute = Compute::dfp16;
    p.overrides_ = {{"first", Compute::fp32}, {"last", Compute::fp32}};
    for (TensorFormat* t : {&p.base_.weights, &p.base_.activations, &p.base_.gradients})
        t->quantize.shift = kDfp16Shift;
    return p;
}

Policy Policy::dfp8() {
    Policy p = dfp16();
    p.base_.compute = Compute::dfp8;
    for (TensorFormat* t : {&p.base_.weights, &p.base_.activations, &p.base_.gradients}) {
        t->format.bits = 8;
        t->quantize.shift = 0;  // int8 chains are long at full magnitude (kernels/gemm.hpp)
    }
    return p;
}

Policy Policy::parse(std::string_view spec) {
    std::vector<std::string_view> items;
    for (std::size_t start = 0; start <= spec.size();) {
        const std::size_t comma = std::min(spec.find(',', start), spec.size());
        items.push_back(spec.substr(start, comma - start));
        start = comma + 1;
    }
    if (items.empty() || items[0].empty())
        throw Error("--precision: empty spec (expected fp32, dfp16 or dfp8 first)");
    const Compute base = parse_compute(items[0], items[0]);
    Policy p = base == Compute::fp32 ? fp32() : base == Compute::dfp16 ? dfp16() : dfp8();
    for (std::size_t i = 1; i < items.size(); ++i) {
        const std::string_view item = items[i];
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0)
            throw Error("--precision item '" + std::string(item) +
                        "': expected SELECTOR=fp32|dfp16|dfp8 or CLASS.KEY=VALUE");
        const std::string_view lhs = item.substr(0, eq), rhs = item.substr(eq + 1);
        const std::size_t dot = lhs.find('.');
        const std::string_view cls = dot == std::string_view::npos ? "" : lhs.substr(0, dot);
        if (cls == "weights" || cls == "activations" || cls == "gradients" || cls == "all") {
            const std::string_view key = lhs.substr(dot + 1);
            if (cls == "weights" || cls == "all") set_key(p.base_.weights, key, rhs, item);
            if (cls == "activations" || cls == "all") set_key(p.base_.activations, key, rhs, item);
            if (cls == "gradients" || cls == "all") set_key(p.base_.gradients, key, rhs, item);
        } else {
            p.overrides_.push_back({std::string(lhs), parse_compute(rhs, item)});
        }
    }
    for (const TensorFormat* t : {&p.base_.weights, &p.base_.activations, &p.base_.gradients})
        if (t->quantize.shift > t->format.bits - 2)
            throw Error("--precision: shift " + std::to_string(t->quantize.shift) +
                        " leaves no mantissa bits of " + std::to_string(t->format.bits));
    return p;
}

LayerPrecision Policy::for_layer(std::string_view name, std::size_t index,
                                 std::size_t count) const {
    LayerPrecision lp = base_;
    for (const Override& o : overrides_) {
        const bool hit = (o.selector == "first" && index == 0) ||
                         (o.selector == "last" && index + 1 == count) ||
                         glob_match(o.selector, name);
        if (hit) lp.compute = o.compute;
    }
    if (lp.compute == Compute::dfp8)  // int8 mantissas
        for (TensorFormat* t : {&lp.weights, &lp.activations, &lp.gradients}) {
            t->format.bits = std::min(t->format.bits, 8);
            t->quantize.shift = std::min(t->quantize.shift, t->format.bits - 2);
        }
    return lp;
}

std::string Policy::describe() const {
    std::string s = std::string("default ") + compute_name(base_.compute);
    for (const Override& o : overrides_) s += ", " + o.selector + "=" + compute_name(o.compute);
    s += "; weights " + tensor_describe(base_.weights) + "; activations " +
         tensor_describe(base_.activations) + "; gradients " + tensor_describe(base_.gradients);
    return s;
}

}  // namespace dfp::precision
