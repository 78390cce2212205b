// Image quality metrics on (1,C,H,W) tensors in [0,1].
#pragma once

#include <torch/types.h>

namespace cloak {

// Peak signal-to-noise ratio in dB (peak 1); infinity for identical images.
double psnr(const torch::Tensor& a, const torch::Tensor& b);

// Structural similarity (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
// averaged over pixels and channels.
double ssim(const torch::Tensor& a, const torch::Tensor& b);

// Largest absolute difference in code values of `bit_depth`.
double linf_codes(const torch::Tensor& a, const torch::Tensor& b, int bit_depth);

}  // namespace cloak
