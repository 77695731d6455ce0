// Naive references of the oneDNN-backed layers: direct loops in double, written for clarity, used
// by the tests as the oracle. Backward functions add into their outputs, like the layers.
#pragma once

#include <cstdint>

#include "nn/conv2d.hpp"

namespace dfp::nn {

// dst is (N,OH,OW,K), src (N,H,W,C), wei (K,KH,KW,C), bias (K) or null.
void conv2d_forward_ref(float* dst, const float* src, const float* wei, const float* bias,
                        const ConvGeometry& g);
// diff_src (N,H,W,C) += conv2d BPROP of diff_dst (N,OH,OW,K) with wei (K,KH,KW,C).
void conv2d_backward_data_ref(float* diff_src, const float* diff_dst, const float* wei,
                              const ConvGeometry& g);
// diff_wei (K,KH,KW,C) += WTGRAD of src (N,H,W,C) and diff_dst (N,OH,OW,K); diff_bias (K) or null.
void conv2d_backward_weights_ref(float* diff_wei, float* diff_bias, const float* src,
                                 const float* diff_dst, const ConvGeometry& g);

// dst (N,O) = src (N,I) wei^T + bias; wei is (O,I), bias (O) or null.
void linear_forward_ref(float* dst, const float* src, const float* wei, const float* bias,
                        std::int64_t n, std::int64_t in, std::int64_t out);

}  // namespace dfp::nn
