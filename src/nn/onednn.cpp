#include "nn/onednn.hpp"

namespace dfp::nn {

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

dnnl::stream& cpu_stream() {
    static dnnl::stream stream(cpu_engine());
    return stream;
}

dnnl::memory wrap(const dnnl::memory::desc& md, const float* data) {
    return dnnl::memory(md, cpu_engine(), const_cast<float*>(data));
}

}  // namespace dfp::nn
