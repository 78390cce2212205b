// Building blocks shared by the TAESD-family surrogates (madebyollin/taesd, taesd.py).
#pragma once

#include <torch/torch.h>

namespace cloak {

// 3x3 convolution, padding 1: conv(a, b) with bias, or the bias-free stride-2 downsampler.
torch::nn::Conv2d taesd_conv(int in, int out, int stride = 1, bool bias = true);

// GroupNorm that always normalises in float32: libtorch 1.13 has no bf16 GroupNorm, so under
// bf16 autocast (cloak/precision.h) the convolution before it would hand it the wrong type.
class Float32GroupNormImpl : public torch::nn::GroupNormImpl {
 public:
  using torch::nn::GroupNormImpl::GroupNormImpl;
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::nn::GroupNormImpl::forward(x.to(torch::kFloat32));
  }
};
TORCH_MODULE(Float32GroupNorm);

// TAESD residual Block(64, 64): relu(conv-relu-conv-relu-conv(x') + x'), where x' = x plus, for the
// "mid-block GroupNorm" variant, a 1x1-conv / GroupNorm(4) / ReLU / 1x1-conv branch named "pool".
class TaesdBlockImpl : public torch::nn::Module {
 public:
  explicit TaesdBlockImpl(bool midblock_gn);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Sequential pool_{nullptr};
  torch::nn::Sequential conv_;
};
TORCH_MODULE(TaesdBlock);

}  // namespace cloak
