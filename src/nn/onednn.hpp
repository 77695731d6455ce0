// The one oneDNN CPU engine and stream that the FP32 layers (Conv2d, BatchNorm2d) run on.
#pragma once

#include <dnnl.hpp>

namespace dfp::nn {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

}  // namespace dfp::nn
