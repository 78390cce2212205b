// Building blocks shared by the TAESD-family surrogates (madebyollin/taesd, taesd.py).
#pragma once

#include <torch/torch.h>

namespace cloak {

// 3x3 convolution, padding 1: conv(a, b) with bias, or the bias-free stride-2 downsampler.
torch::nn::Conv2d taesd_conv(int in, int out, int stride = 1, bool bias = true);

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
