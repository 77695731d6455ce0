// Run-time choice of instruction set. The library is built for plain x86-64; fast paths live in
// ISA folders and are called only when the CPU has the ISA. DFP_ISA=scalar|avx2|avx512|avx512_vnni
// caps the choice (never raises it above what the CPU has), so one machine tests every path.
#pragma once

#include <string>
#include <string_view>

namespace dfp {

// Ordered: each level includes the ones below it.
enum class Isa {
    scalar = 0,
    avx2 = 1,         // AVX2 + FMA
    avx512 = 2,       // AVX-512 F, BW, VL, DQ
    avx512_vnni = 3,  // plus AVX512_VNNI (vpdpwssd, vpdpbusd)
};

// What this CPU supports (CPUID and XGETBV), ignoring DFP_ISA.
Isa cpu_isa();
// The ISA the library uses: cpu_isa() capped by DFP_ISA (read once). Throws dfp::Error naming
// DFP_ISA when its value is not one of the names above.
Isa active_isa();
// Parses an ISA name; throws dfp::Error naming `what` on an unknown name.
Isa parse_isa(std::string_view name, std::string_view what);
const char* isa_name(Isa isa);
// The CPU for benchmark reports: its brand string and CPUID family/model, e.g. "AMD EPYC (family
// 26, model 2)". Machines that share a name can differ (Zen 4 is family 25, Zen 5 family 26, with
// twice the FP32 and integer multiply-add rate per core), so reports carry both.
std::string cpu_name();

}  // namespace dfp
