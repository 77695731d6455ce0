// Max pooling's rows per instruction set (nn/pool.cpp runs them over rows in parallel). A window's
// argmax is kept as its offset (kh * kernel + kw) from the window's unclipped corner, one byte per
// output: a quarter of the traffic of an index per element, so kernel <= kMaxPoolByteKernel. Both
// kernels take the reference's decisions (pool.hpp: the first maximum in row-major window order, a
// NaN taken wherever it comes, a window of -Inf routed to its first element) and sum the
// gradients in its order, so the results are its bits.
#pragma once

#include <cstdint>

#include "nn/pool.hpp"

namespace dfp::nn {

inline constexpr std::int64_t kMaxPoolByteKernel = 16;  // offsets up to 255

// dst and argmax of output row oh of image n: OW x C values each.
void maxpool_forward_row_avx512(float* dst, std::uint8_t* argmax, const float* src,
                                const PoolGeometry& g, std::int64_t n, std::int64_t oh);
// Row ih of image n of diff_src (W x C): the gradients of the outputs whose argmax it holds,
// added to it, or written (`write`, the row's old values ignored).
void maxpool_backward_row_avx512(float* diff_src, const std::uint8_t* argmax, const float* diff_dst,
                                 const PoolGeometry& g, std::int64_t n, std::int64_t ih,
                                 bool write);

}  // namespace dfp::nn
