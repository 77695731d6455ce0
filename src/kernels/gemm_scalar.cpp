// The scalar reference of the GEMM: packers and micro-kernels written for clarity, plain x86-64.
// They are the fallback of the dispatch (Isa::scalar), the twins that tests compare every fast
// kernel with bit for bit, and the executable description of the packed layout in
// gemm_context.hpp. The FP32 arithmetic follows the fast kernels' order exactly: each chain's INT32
// sum is converted and added to an FP32 sum (the first chain initialises it), then the tile is
// scaled by 2^(eA_i + eB_j) (exact) and added to C.
#include "kernels/gemm_scalar.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/gemm_context.hpp"

namespace dfp::kernels {
namespace {

constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();
constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();

// Wrapping INT32 addition, as vpaddd/vpdpwssd do (defined through uint32).
int32_t wrap_add(int32_t x, int64_t y) {
    return static_cast<int32_t>(static_cast<uint32_t>(x) + static_cast<uint32_t>(y));
}

}  // namespace

int16_t round_shift_s16(int16_t x, int shift) {
    if (shift == 0) return x;
    const int32_t mag = x < 0 ? -int32_t{x} : int32_t{x};
    const int32_t r = (mag + (int32_t{1} << (shift - 1))) >> shift;
    return static_cast<int16_t>(x < 0 ? -r : r);
}

void ref_norm_levels(const int16_t* panel, int w, int64_t kp, uint64_t* levels) {
    // Level 0: the bound w_rp of each pair and lane (units of 2^kStatShift); each further level
    // sums aligned pairs of blocks of the level below (a missing right neighbour counts as 0).
    std::vector<uint64_t> sums(static_cast<size_t>(kp * w));
    for (int64_t p = 0; p < kp; ++p)
        for (int r = 0; r < w; ++r) {
            const int64_t x0 = panel[(p * w + r) * 2], x1 = panel[(p * w + r) * 2 + 1];
            sums[static_cast<size_t>(p * w + r)] =
                (static_cast<uint64_t>(x0 * x0 + x1 * x1) >> kStatShift) + 1;
        }
    int64_t blocks = kp;
    for (int l = 0; l < norm_levels(kp); ++l) {
        levels[l] = *std::max_element(sums.begin(), sums.begin() + blocks * w) << kStatShift;
        const int64_t half = ceil_div(blocks, 2);
        for (int64_t q = 0; q < half; ++q)
            for (int r = 0; r < w; ++r)
                sums[static_cast<size_t>(q * w + r)] =
                    sums[static_cast<size_t>(2 * q * w + r)] +
                    (2 * q + 1 < blocks ? sums[static_cast<size_t>((2 * q + 1) * w + r)] : 0);
        blocks = half;
    }
}

namespace {

// Which transformation the packer applies: s16 (shift, statistics), s8 A (offset to unsigned),
// s8 B (column sums).
enum class PackKind { s16, u8_offset, s8_sums };

template <typename T, int W, int KG, PackKind kind>
void pack_ref(const T* src, int64_t ld, bool k_contiguous, int64_t rows, int64_t kc, int shift,
              T* dst, uint64_t* stats, int32_t* col_sums, int64_t sum_kp) {
    const int64_t kp = ceil_div(kc, KG);
    const int64_t panels = ceil_div(rows, W);
    for (int64_t q = 0; q < panels; ++q) {
        T* d = dst + q * kp * W * KG;
        for (int64_t p = 0; p < kp; ++p)
            for (int r = 0; r < W; ++r)
                for (int g = 0; g < KG; ++g) {
                    const int64_t row = q * W + r, k = p * KG + g;
                    const bool inside = row < rows && k < kc;
                    T x = inside ? src[k_contiguous ? row * ld + k : k * ld + row] : T{0};
                    if constexpr (kind == PackKind::s16) x = round_shift_s16(x, shift);
                    if constexpr (kind == PackKind::u8_offset)
                        x = static_cast<T>(static_cast<uint8_t>(x + 128));
                    d[(p * W + r) * KG + g] = x;
                }
        if constexpr (kind == PackKind::s16)
            if (stats != nullptr) ref_norm_levels(d, W, kp, stats + q * norm_levels(kp));
        if constexpr (kind == PackKind::s8_sums)
            if (col_sums != nullptr) {
                const int64_t runs = ceil_div(kp, sum_kp);
                for (int64_t run = 0; run < runs; ++run)
                    for (int r = 0; r < W; ++r) {
                        int32_t sum = 0;
                        for (int64_t p = run * sum_kp; p < std::min(kp, (run + 1) * sum_kp); ++p)
                            for (int g = 0; g < KG; ++g) sum += d[(p * W + r) * KG + g];
                        col_sums[(q * runs + run) * W + r] = sum;
                    }
            }
    }
}

enum class Mode { f32, f32_count, s32, f32_blocked };

// The reference micro-kernel: C tile (MR x NR) from packed micro-panels a (kp x MR x KG) and b
// (kp x NR x KG). s16: products of two int16; s8: unsigned a (offset by 128) times signed b, with
// the compensation -128 * column sum of b applied to each chain (one chain per block for s8,
// except block-scaled output: one chain per exponent block, with its own column sums and scales,
// summed as fma(chain, scale, sum) in FP32).
template <typename T, int MR, int NR, int KG, Mode mode>
void ukernel_ref(const UkernelArgs& args) {
    using A = std::conditional_t<KG == 4, uint8_t, int16_t>;
    const A* a = static_cast<const A*>(args.a);
    const T* b = static_cast<const T*>(args.b);
    const int64_t chain = mode == Mode::f32_blocked                ? args.chain
                          : mode == Mode::s32 || KG == 4 ? args.kp
                                                                   : args.chain;
    std::array<int32_t, MR * NR> acc{};
    std::array<float, MR * NR> sum{};
    for (int64_t p0 = 0; p0 < args.kp; p0 += chain) {
        const int64_t p1 = std::min(args.kp, p0 + chain);
        acc.fill(0);
        for (int64_t p = p0; p < p1; ++p)
            for (int i = 0; i < MR; ++i)
                for (int j = 0; j < NR; ++j) {
                    int64_t dot = 0;  // one instruction's KG products: exact in int64
                    for (int g = 0; g < KG; ++g)
                        dot +=
                            int64_t{a[(p * MR + i) * KG + g]} * int64_t{b[(p * NR + j) * KG + g]};
                    int32_t& x = acc[i * NR + j];
                    if constexpr (mode == Mode::f32_count)
                        x = static_cast<int32_t>(std::clamp<int64_t>(x + dot, kI32Min, kI32Max));
                    else
                        x = wrap_add(x, dot);
                }
        const int64_t c = p0 / chain;
        if constexpr (KG == 4) {
            const int32_t* sums = args.b_col_sums + (mode == Mode::f32_blocked ? c * NR : 0);
            for (int i = 0; i < MR; ++i)
                for (int j = 0; j < NR; ++j)
                    acc[i * NR + j] = wrap_add(acc[i * NR + j], -int64_t{128} * sums[j]);
        }
        if constexpr (mode == Mode::f32_count)
            for (int32_t x : acc) *args.events += (x == kI32Max || x == kI32Min) ? 1 : 0;
        if constexpr (mode == Mode::f32_blocked)
            for (int i = 0; i < MR; ++i)
                for (int j = 0; j < NR; ++j) {
                    const float f = static_cast<float>(acc[i * NR + j]);
                    const float scale = args.a_chain_scale[c * MR + i] * args.b_chain_scale[c * NR + j];
                    float& s = sum[i * NR + j];
                    s = p0 == 0 ? f * scale : std::fma(f, scale, s);
                }
        else if constexpr (mode != Mode::s32)
            for (int e = 0; e < MR * NR; ++e)
                sum[e] = p0 == 0 ? static_cast<float>(acc[e]) : sum[e] + static_cast<float>(acc[e]);
    }
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) {
            if constexpr (mode == Mode::s32) {
                int32_t* c = static_cast<int32_t*>(args.c) + i * args.ldc + j;
                *c = args.load_c ? wrap_add(*c, acc[i * NR + j]) : acc[i * NR + j];
            } else {
                float* c = static_cast<float*>(args.c) + i * args.ldc + j;
                const float scaled = sum[i * NR + j] * (args.row_scale[i] * args.col_scale[j]);
                float y = args.load_c ? *c + scaled : scaled;
                if (args.bias) y += args.bias[j];
                *c = args.relu && y < 0.0f ? 0.0f : y;  // NaN and -0 pass
            }
        }
}

// Blocking of the scalar path: small tiles, blocks that fit any cache.
constexpr int64_t kRefMc = 64, kRefKc = 256, kRefNc = 512;

template <int MR, int NR>
constexpr GemmContext<int16_t> s16_ref_context{
    "scalar",
    Isa::scalar,
    MR,
    NR,
    2,
    kRefMc,
    kRefKc,
    kRefNc,
    pack_ref<int16_t, MR, 2, PackKind::s16>,
    pack_ref<int16_t, NR, 2, PackKind::s16>,
    ukernel_ref<int16_t, MR, NR, 2, Mode::f32>,
    ukernel_ref<int16_t, MR, NR, 2, Mode::f32_count>,
    ukernel_ref<int16_t, MR, NR, 2, Mode::s32>,
};

template <int MR, int NR>
constexpr GemmContext<int8_t> s8_ref_context{
    "scalar",
    Isa::scalar,
    MR,
    NR,
    4,
    kRefMc,
    kRefKc,
    kRefNc,
    pack_ref<int8_t, MR, 4, PackKind::u8_offset>,
    pack_ref<int8_t, NR, 4, PackKind::s8_sums>,
    ukernel_ref<int8_t, MR, NR, 4, Mode::f32>,
    nullptr,
    ukernel_ref<int8_t, MR, NR, 4, Mode::s32>,
    0,
    nullptr,
    nullptr,
    ukernel_ref<int8_t, MR, NR, 4, Mode::f32_blocked>,
};

}  // namespace

// The shapes built: the scalar path's own (4 x 16) and one twin per fast kernel shape.
const GemmContext<int16_t>* s16_scalar_twin(int mr, int nr) {
    if (mr == 4 && nr == 16) return &s16_ref_context<4, 16>;
    if (mr == 8 && nr == 32) return &s16_ref_context<8, 32>;
    return nullptr;
}

const GemmContext<int8_t>* s8_scalar_twin(int mr, int nr) {
    if (mr == 4 && nr == 16) return &s8_ref_context<4, 16>;
    if (mr == 8 && nr == 32) return &s8_ref_context<8, 32>;
    return nullptr;
}

PackFn<int16_t> s16_ref_packer(int w) {
    if (w == 4) return pack_ref<int16_t, 4, 2, PackKind::s16>;
    if (w == 16) return pack_ref<int16_t, 16, 2, PackKind::s16>;
    if (w == 8) return pack_ref<int16_t, 8, 2, PackKind::s16>;
    if (w == 32) return pack_ref<int16_t, 32, 2, PackKind::s16>;
    return nullptr;
}

}  // namespace dfp::kernels
