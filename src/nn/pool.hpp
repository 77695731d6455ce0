// Pooling over NHWC feature maps: max, average, and global average.
#pragma once

#include <cstdint>
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

// What max and average pooling share: the window configuration and the geometry it gives.
class Pool2d : public Layer {
  public:
    // `kind` is the derived layer's (its constructor checks the configuration and names it).
    Pool2d(std::string name, const char* kind, const Pool2dConfig& config);
    const char* kind() const override { return kind_; }
    // The geometry for src of this shape; throws dfp::Error naming the layer when it does not fit.
    PoolGeometry geometry(const Shape& src) const;
    const Pool2dConfig& config() const { return config_; }

  protected:
    const char* kind_;
    Pool2dConfig config_;
};

class MaxPool2d : public Pool2d {
  public:
    MaxPool2d(std::string name, const Pool2dConfig& config)
        : Pool2d(std::move(name), "maxpool2d", config) {}
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;

  private:
    std::vector<std::int32_t> argmax_;  // of the last forward
};

class AvgPool2d : public Pool2d {
  public:
    AvgPool2d(std::string name, const Pool2dConfig& config)
        : Pool2d(std::move(name), "avgpool2d", config) {}
    void forward(Srcs src, Tensor& dst, const Context& ctx) override;
    void backward(Srcs src, const Tensor& dst, const Tensor& diff_dst, DiffSrcs diff_src) override;
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
