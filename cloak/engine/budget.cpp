#include "cloak/engine/budget.h"
#include "cloak/core/pixel.h"

#include <torch/torch.h>

namespace cloak {

namespace F = torch::nn::functional;

torch::Tensor perceptual_budget(const torch::Tensor& image, const torch::Tensor& mask, double eps,
                                int bit_depth) {
  torch::NoGradGuard no_grad;
  auto luma = image.size(1) == 3 ? (kLumaR * image.select(1, 0) + kLumaG * image.select(1, 1) +
                                    kLumaB * image.select(1, 2))
                                       .unsqueeze(1)
                                 : image;
  // Local contrast: standard deviation of luma over a 5x5 window.
  auto pool = [](const torch::Tensor& t) {
    return F::avg_pool2d(F::pad(t, F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReplicate)),
                         F::AvgPool2dFuncOptions(5).stride(1));
  };
  auto mean = pool(luma);
  auto std = (pool(luma * luma) - mean * mean).clamp_min(0).sqrt();
  // Texture of 3/100 (about 8 code values of 8-bit) or more hides the full budget.
  auto shape = (std / 0.03).clamp(0.2, 1.0);
  shape = pool(shape);  // no hard seams between flat and textured regions
  auto eps_map = eps * shape;
  if (mask.defined()) eps_map = eps_map * mask;
  const double q = max_code(bit_depth);
  return (eps_map * q).floor() / q;
}

void project_to_budget(torch::Tensor& delta, const torch::Tensor& x0, const torch::Tensor& eps_map,
                       double max_mse) {
  torch::NoGradGuard no_grad;
  delta.copy_(torch::max(torch::min(delta, eps_map), -eps_map));
  delta.copy_((x0 + delta).clamp(0, 1) - x0);
  double mse = delta.square().mean().item<double>();
  if (mse > max_mse) delta.mul_(std::sqrt(max_mse / mse));
}

torch::Tensor quantize_ste(const torch::Tensor& x, int bit_depth) {
  const double q = max_code(bit_depth);
  return x + ((x * q).round() / q - x).detach();
}

}  // namespace cloak
