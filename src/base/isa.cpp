#include "base/isa.hpp"

#include <cpuid.h>

#include <cstdlib>
#include <string>

#include "base/error.hpp"

namespace dfp {
namespace {

bool has_bit(unsigned reg, int bit) {
    return (reg >> bit) & 1u;
}

// The OS must save the wider registers on context switch (XCR0), not just the CPU have them.
unsigned long long xcr0() {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<unsigned long long>(hi) << 32) | lo;
}

Isa detect() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::scalar;
    const bool osxsave = has_bit(c, 27), fma = has_bit(c, 12);
    if (!osxsave) return Isa::scalar;
    const unsigned long long xcr = xcr0();
    const bool ymm_state = (xcr & 0x6) == 0x6;
    const bool zmm_state = (xcr & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::scalar;
    const bool avx2 = has_bit(b, 5);
    const bool avx512 =
        has_bit(b, 16) && has_bit(b, 17) && has_bit(b, 30) && has_bit(b, 31);  // F DQ BW VL
    const bool vnni = has_bit(c, 11);
    if (!(ymm_state && avx2 && fma)) return Isa::scalar;
    if (!(zmm_state && avx512)) return Isa::avx2;
    return vnni ? Isa::avx512_vnni : Isa::avx512;
}

}  // namespace

Isa cpu_isa() {
    static const Isa isa = detect();
    return isa;
}

Isa parse_isa(std::string_view name, std::string_view what) {
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512_vnni})
        if (name == isa_name(isa)) return isa;
    throw Error(std::string(what) + ": unknown ISA '" + std::string(name) +
                "' (expected scalar, avx2, avx512 or avx512_vnni)");
}

Isa active_isa() {
    static const Isa isa = [] {
        const char* env = std::getenv("DFP_ISA");
        if (env == nullptr || *env == '\0') return cpu_isa();
        const Isa cap = parse_isa(env, "DFP_ISA");
        return cap < cpu_isa() ? cap : cpu_isa();
    }();
    return isa;
}

std::string cpu_name() {
    unsigned regs[12] = {};
    std::string brand;
    for (unsigned leaf = 0; leaf < 3; ++leaf)
        if (__get_cpuid(0x80000002u + leaf, &regs[4 * leaf], &regs[4 * leaf + 1],
                        &regs[4 * leaf + 2], &regs[4 * leaf + 3]))
            brand.append(reinterpret_cast<const char*>(&regs[4 * leaf]), 16);
    brand = brand.substr(0, brand.find('\0'));
    const auto first = brand.find_first_not_of(' '), last = brand.find_last_not_of(' ');
    brand = first == std::string::npos ? "unknown CPU" : brand.substr(first, last - first + 1);
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return brand;
    // Family and model with their extended fields, as the vendors define them.
    const unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    const unsigned family = base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family;
    const unsigned model = base_family == 0xf || base_family == 0x6
                               ? base_model + (((a >> 16) & 0xf) << 4)
                               : base_model;
    return brand + " (family " + std::to_string(family) + ", model " + std::to_string(model) + ")";
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::scalar:
            return "scalar";
        case Isa::avx2:
            return "avx2";
        case Isa::avx512:
            return "avx512";
        case Isa::avx512_vnni:
            return "avx512_vnni";
    }
    return "?";
}

}  // namespace dfp
