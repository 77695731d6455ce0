// The arithmetic of the gradient exchange, apart from MPI (tests run it for N simulated ranks).
//
// Both exchanges are a reduce-scatter then an allgather (the two halves of a ring allreduce): the
// gradient, padded to N equal chunks, goes chunk r to rank r (alltoall); rank r averages the N
// copies of its chunk, summing in rank order, and sends the average to every rank (allgather).
// Every rank then holds the same bits, whatever algorithm MPI picks. Each rank sends
// 2 (N-1)/N x padded size x bytes per value: 4 for FP32, 2 for DFP16.
//
// DFP16 (Das et al.: integers also halve communication):
//  1. the ranks agree one exponent per tensor, E = shared_exponent(max over ranks of max |g|, 16):
//     an allreduce of the maximum, the same rule as format/ (largest |g| in [2^14, 2^15) x 2^E);
//  2. each rank rounds g x 2^-E to int16 mantissas (nearest even, clamped to +-32767);
//  3. the chunk owner sums the N mantissas in INT32: |sum| <= N x 32767 < 2^31 for N <= 65538
//     ranks, so the sum is exact; the average sum / N (rounded to nearest even) is again an int16
//     mantissa with exponent E, which is what the allgather sends;
//  4. every rank scales the averaged mantissas back once: g = m x 2^E.
// Bound: each rank's rounding errs by at most 2^(E-1) (2^E where the clamp at 32767 bites), the
// average's rounding by 2^(E-1), so |result - exact average| <= 1.5 x 2^E <= 1.5 x 2^-14 x max|g|
// (max over ranks and elements of the tensor), i.e. 9.2e-5 of the tensor's largest magnitude.
#pragma once

#include <cstdint>
#include <span>

namespace dfp::dist {

constexpr int kMaxRanksDfp16 = 65538;  // N x 32767 < 2^31

// Largest |x| as IEEE bits (integer order is value order for |x|); any NaN or Inf gives
// >= kNonFiniteBits (format/quantize_kernels.hpp), so an allreduce of the maximum also tells
// every rank that some rank has a non-finite gradient.
std::uint32_t max_abs_bits(std::span<const float> x);

// The exponent agreed from the largest magnitude over all ranks (bits of a finite float).
int shared_exponent_of(std::uint32_t max_abs_bits);

// dst = round_nearest_even(src x 2^-exponent), clamped to +-32767 (src finite).
void quantize_s16(std::span<const float> src, int exponent, std::span<std::int16_t> dst);
// dst = m x 2^exponent.
void dequantize_s16(std::span<const std::int16_t> src, int exponent, std::span<float> dst);

// recv holds `ranks` chunks of dst.size() values, chunk r from rank r. dst[i] = the average over
// r of chunk r's element i: DFP16 summed exactly in INT32 then rounded to nearest even; FP32
// summed in rank order, then divided by ranks.
void average_chunks_s16(std::span<const std::int16_t> recv, int ranks, std::span<std::int16_t> dst);
void average_chunks_f32(std::span<const float> recv, int ranks, std::span<float> dst);

}  // namespace dfp::dist
