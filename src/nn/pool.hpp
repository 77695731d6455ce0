// Pooling over NHWC feature maps: max, average, and global average.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/layer.hpp"

namespace dfp::nn {

struct Pool2dConfig {
    std::int64_t kernel = 2;  // square window
    std::int64_t stride = 2;
    std::int64_t pad = 0;  // at most kernel / 2, so every window holds a real element
    // Output size rounds up (Caffe, GoogLeNet-v1) instead of down; a window that would start in
    // the right padding is dropped, as Caffe and PyTorch do.
    bool ceil_mode = false;
};

struct PoolGeometry {
    std::int64_t n, h, w, c;  // src (N, H, W, C)
    std::int64_t kernel, stride, pad;
    std::int64_t oh, ow;  // dst (N, OH, OW, C)
};

// The reference functions: plain loops, the tests' oracle for the oneDNN layers below, and the path
// MaxPool2d takes for inputs oneDNN would pool differently.

// dst (N,OH,OW,C) = max over each window of src (N,H,W,C), padding ignored, NaN if any; argmax
// (N,OH,OW,C) = the index ih * W + iw of the first maximum within its image.
void maxpool_forward(float* dst, std::int32_t* argmax, const float* src, const PoolGeometry& g);
// diff_src (N,H,W,C) += diff_dst (N,OH,OW,C) routed to each window's argmax.
void maxpool_backward(float* diff_src, const std::int32_t* argmax, const float* diff_dst,
                      const PoolGeometry& g);
// dst (N,OH,OW,C) = mean over the elements of each window inside src (N,H,W,C): padding is not
// counted (Caffe's and oneDNN's avg_exclude_padding, not PyTorch's default).
void avgpool_forward(float* dst, const float* src, const PoolGeometry& g);
// diff_src (N,H,W,C) += diff_dst (N,OH,OW,C) spread evenly over each window's elements.
void avgpool_backward(float* diff_src, const float* diff_dst, const PoolGeometry& g);

// What max and average pooling share: the window configuration, the geometry it gives, and oneDNN's
// pooling (NHWC f32; max, or average excluding padding), its primitives created once per input
// shape and cached. Ceil mode is a larger right padding, which clips only the last window, whose
// start lies inside src (pooled_size drops any other): max pooling ignores padding, and the
// average divides by the count of elements inside src, as the reference functions do.
class Pool2d : public Layer {
  public:
    ~Pool2d() override;
    const char* kind() const override;
    // The geometry for src of this shape; throws dfp::Error naming the layer when it does not fit.
    PoolGeometry geometry(const Shape& src) const;
    const Pool2dConfig& config() const { return config_; }

  protected:
    enum class Algorithm { max, average };
    // The constructor checks the configuration and names the layer's kind by `algorithm`.
    Pool2d(std::string name, Algorithm algorithm, const Pool2dConfig& config);
    // dst (N,OH,OW,C) = oneDNN's pooling of src (N,H,W,C); max pooling keeps each window's argmax
    // in the plan's workspace for onednn_backward. Eval mode runs the same training primitive, so
    // backward stays valid after either mode: forward_inference, which writes no workspace, was no
    // faster (32x112x112x64, 3x3 stride 2, 1 thread: 12.3 ms against 11.8).
    void onednn_forward(float* dst, const float* src, const PoolGeometry& g);
    // diff_src (N,H,W,C) += oneDNN's backward of diff_dst (N,OH,OW,C), after onednn_forward of this
    // shape; `write`: diff_src = it instead (Layer::backward_into's fresh buffer).
    void onednn_backward(float* diff_src, const float* diff_dst, const PoolGeometry& g, bool write);

  private:
    struct OnednnPlan;  // in pool.cpp
    OnednnPlan& plan(const PoolGeometry& g);

    Algorithm algorithm_;
    Pool2dConfig config_;
    std::map<std::array<std::int64_t, 4>, std::unique_ptr<OnednnPlan>> plans_;  // by (N, H, W, C)
    std::vector<float> diff_src_scratch_;  // oneDNN writes; backward adds
};

// Runs on dfptrain's AVX-512 rows (pool_kernels.hpp) where the CPU has them and the kernel is at
// most kMaxPoolByteKernel: the reference's bits, one read of src and of diff_dst, each gradient
// written once. oneDNN ran at 4-6 GB/s on GoogLeNet's pools, and needs a check first: it starts
// each window at lowest() (-FLT_MAX) and takes a value only when it is strictly greater, so it
// would skip a NaN (which must reach the NaN check), and for a window of -Inf or lowest() values
// it gives lowest() and routes the gradient into the padding. Elsewhere oneDNN runs when every
// src value is above lowest(), and maxpool_forward and maxpool_backward otherwise.
class MaxPool2d : public Pool2d {
  public:
    MaxPool2d(std::string name, const Pool2dConfig& config)
        : Pool2d(std::move(name), Algorithm::max, config) {}
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;

  private:
    enum class Path { rows, onednn, reference };
    Path path_ = Path::rows;                 // of the last forward
    std::vector<std::uint8_t> argmax_rows_;  // of the last forward on the rows: window offsets
    std::vector<std::int32_t> argmax_;       // of the last forward on maxpool_forward
};

// Runs on oneDNN (avg_exclude_padding) for every input: NaN and Inf propagate through its sums as
// through the reference's.
class AvgPool2d : public Pool2d {
  public:
    AvgPool2d(std::string name, const Pool2dConfig& config)
        : Pool2d(std::move(name), Algorithm::average, config) {}
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
    void backward_into(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src,
                       Overwrite overwrite) override;
};

// dst (N,1,1,C) = mean of src (N,H,W,C) over H and W.
class GlobalAvgPool : public Layer {
  public:
    explicit GlobalAvgPool(std::string name) : Layer(std::move(name)) {}
    const char* kind() const override { return "global_avgpool"; }
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
};

}  // namespace dfp::nn
