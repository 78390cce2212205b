#include "cloak/engine/budget.h"
#include "cloak/core/pixel.h"
#include "cloak/engine/cancel.h"

#include <torch/torch.h>

namespace cloak {

namespace F = torch::nn::functional;

namespace {
// Texture whose gradient across its strongest orientation is kTextureGradient per pixel (about 10
// 8-bit codes, what a local standard deviation of 3/100 gives) hides the whole bound; a clean edge
// counts kEdgeMasking of its contrast; flat colour keeps kFlatShare of the bound.
constexpr double kTextureGradient = 0.04;
constexpr double kEdgeMasking = 0.1;
constexpr double kFlatShare = 0.2;
}  // namespace

torch::Tensor texture_masking(const torch::Tensor& image) {
  torch::NoGradGuard no_grad;
  auto luma = image.size(1) == 3 ? (kLumaR * image.select(1, 0) + kLumaG * image.select(1, 1) +
                                    kLumaB * image.select(1, 2))
                                       .unsqueeze(1)
                                 : image;
  auto pool = [](const torch::Tensor& t) {
    return F::avg_pool2d(F::pad(t, F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReplicate)),
                         F::AvgPool2dFuncOptions(5).stride(1));
  };
  // The structure tensor over 5x5: its larger eigenvalue is the contrast of the strongest
  // orientation, its smaller one what is left across it. A clean edge or a smooth ramp has only
  // the first; texture has both. Texture hides change, a clean edge much less (a local standard
  // deviation, which took edges for texture, left them serrated: bench/RESULTS.md).
  auto p = F::pad(luma, F::PadFuncOptions({0, 1, 0, 1}).mode(torch::kReplicate));
  auto gx = p.slice(3, 1).slice(2, 0, -1) - p.slice(3, 0, -1).slice(2, 0, -1);
  auto gy = p.slice(2, 1).slice(3, 0, -1) - p.slice(2, 0, -1).slice(3, 0, -1);
  auto jxx = pool(gx * gx), jyy = pool(gy * gy), jxy = pool(gx * gy);
  stop_if_cancelled();  // seconds on a large image
  auto half_trace = (jxx + jyy) / 2;
  auto disc = (half_trace * half_trace - (jxx * jyy - jxy * jxy)).clamp_min(0).sqrt();
  auto across = (half_trace - disc).clamp_min(0).sqrt(), along = (half_trace + disc).sqrt();
  auto shape = ((across + kEdgeMasking * along) / kTextureGradient).clamp(kFlatShare, 1.0);
  return pool(shape);  // no hard seams between flat and textured regions
}

torch::Tensor perceptual_budget(const torch::Tensor& masking, const torch::Tensor& mask, double eps,
                                int bit_depth) {
  torch::NoGradGuard no_grad;
  auto eps_map = eps * masking;
  if (mask.defined()) eps_map = eps_map * mask;
  const double q = max_code(bit_depth);
  return (eps_map * q).floor() / q;
}

void project_to_budget(torch::Tensor& delta, const torch::Tensor& x0,
                       const torch::Tensor& eps_map) {
  torch::NoGradGuard no_grad;
  delta.copy_(torch::max(torch::min(delta, eps_map), -eps_map));
  delta.copy_((x0 + delta).clamp(0, 1) - x0);
}

torch::Tensor local_distance(const torch::Tensor& distmap) {
  torch::NoGradGuard no_grad;
  auto pad = [](const torch::Tensor& t, int64_t r) {
    return F::pad(t, F::PadFuncOptions({r, r, r, r}).mode(torch::kReplicate));
  };
  auto d = distmap.unsqueeze(0).unsqueeze(0);
  d = F::max_pool2d(pad(d, 3), F::MaxPool2dFuncOptions(7).stride(1));
  return F::avg_pool2d(pad(d, 7), F::AvgPool2dFuncOptions(15).stride(1));
}

torch::Tensor visibility_level(const torch::Tensor& masking, const torch::Tensor& yardstick,
                               double invisible) {
  torch::NoGradGuard no_grad;
  const auto texture = (masking - kFlatShare) / (1 - kFlatShare);
  return torch::max(local_distance(yardstick).to(masking.device()) * texture,
                    torch::full_like(masking, invisible));
}

torch::Tensor visibility_gain(const torch::Tensor& distmap, const torch::Tensor& level, double lo,
                              double hi) {
  torch::NoGradGuard no_grad;
  return (level / local_distance(distmap).clamp_min(1e-6)).clamp(lo, hi);
}

torch::Tensor favour_chroma(const torch::Tensor& grad, double weight) {
  if (grad.size(1) != 3) return grad;
  // RGB to YCbCr (Cb = (B - Y) / 1.772, Cr = (R - Y) / 1.402), and the step it gives:
  // the gradient in YCbCr is M^-T grad, weighted there and taken back by M^-1.
  const auto m = torch::tensor({{kLumaR, kLumaG, kLumaB},
                                {-kLumaR / 1.772, -kLumaG / 1.772, (1 - kLumaB) / 1.772},
                                {(1 - kLumaR) / 1.402, -kLumaG / 1.402, -kLumaB / 1.402}},
                               torch::kFloat64);
  const auto inv = torch::linalg::inv(m);
  const auto w = torch::diag(torch::tensor({1.0, weight, weight}, torch::kFloat64));
  const auto p = inv.matmul(w).matmul(inv.t()).to(grad.options());
  return torch::einsum("ij,bjhw->bihw", {p, grad});
}

torch::Tensor quantize_ste(const torch::Tensor& x, int bit_depth) {
  const double q = max_code(bit_depth);
  return x + ((x * q).round() / q - x).detach();
}

}  // namespace cloak
