// The one oneDNN CPU engine and stream that the FP32 layers (Conv2d, BatchNorm2d, pooling) run on.
#pragma once

#include <dnnl.hpp>

namespace dfp::nn {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();
// A oneDNN memory over a buffer the caller owns. oneDNN takes a mutable pointer even for a
// primitive's inputs, which it only reads.
dnnl::memory wrap(const dnnl::memory::desc& md, const float* data);

}  // namespace dfp::nn
