#include "cloak/models/taesd_block.h"

namespace cloak {

namespace nn = torch::nn;

nn::Conv2d taesd_conv(int in, int out, int stride, bool bias) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(bias));
}

TaesdBlockImpl::TaesdBlockImpl(bool midblock_gn)
    : conv_(taesd_conv(64, 64), nn::ReLU(), taesd_conv(64, 64), nn::ReLU(), taesd_conv(64, 64)) {
  if (midblock_gn) {
    pool_ = register_module(
        "pool", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(64, 256, 1).bias(false)),
                               Float32GroupNorm(nn::GroupNormOptions(4, 256).eps(1e-5)), nn::ReLU(),
                               nn::Conv2d(nn::Conv2dOptions(256, 64, 1).bias(false))));
  }
  register_module("conv", conv_);
}

torch::Tensor TaesdBlockImpl::forward(torch::Tensor x) {
  if (pool_) x = x + pool_->forward(x);
  return torch::relu(conv_->forward(x) + x);
}

}  // namespace cloak
