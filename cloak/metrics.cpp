#include "cloak/metrics.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace cloak {

namespace F = torch::nn::functional;

double psnr(const torch::Tensor& a, const torch::Tensor& b) {
  double mse = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).square().mean().item<double>();
  return mse == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(1.0 / mse);
}

double ssim(const torch::Tensor& a, const torch::Tensor& b) {
  torch::NoGradGuard no_grad;
  auto g = torch::arange(-5, 6, torch::kFloat32);
  g = torch::exp(-g * g / (2 * 1.5 * 1.5));
  g = g / g.sum();
  const auto gh = g.view({1, 1, 1, 11}), gv = g.view({1, 1, 11, 1});
  // Separable Gaussian, valid region only; one channel at a time keeps large images in memory.
  auto blur = [&](const torch::Tensor& t) { return F::conv2d(F::conv2d(t, gh), gv); };
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  // Images smaller than the window are padded up to it (edge replicated).
  const int64_t ph = std::max<int64_t>(0, 11 - a.size(2)),
                pw = std::max<int64_t>(0, 11 - a.size(3));
  const auto pad = F::PadFuncOptions({0, pw, 0, ph}).mode(torch::kReplicate);
  double sum = 0;
  for (int64_t c = 0; c < a.size(1); ++c) {
    // Moments of values centred on a shared constant: no float32 cancellation in the variances.
    auto ac = a.slice(1, c, c + 1).to(torch::kFloat32),
         bc = b.slice(1, c, c + 1).to(torch::kFloat32);
    const auto k = ac.mean();
    auto x = F::pad(ac - k, pad), y = F::pad(bc - k, pad);
    auto mx = blur(x), my = blur(y);
    auto sxx = blur(x * x) - mx * mx, syy = blur(y * y) - my * my, sxy = blur(x * y) - mx * my;
    mx = mx + k;
    my = my + k;
    auto map =
        ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
    sum += map.to(torch::kFloat64).mean().item<double>();
  }
  return sum / static_cast<double>(a.size(1));
}

double linf_codes(const torch::Tensor& a, const torch::Tensor& b, int bit_depth) {
  const double q = bit_depth == 16 ? 65535.0 : 255.0;
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>() * q);
}

}  // namespace cloak
