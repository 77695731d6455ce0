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
