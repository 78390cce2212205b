#include "cloak/engine/metrics.h"
#include "cloak/core/pixel.h"

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
  constexpr int64_t kWin = 11, kRows = 256;
  auto g = torch::arange(-5, 6, torch::kFloat32);
  g = torch::exp(-g * g / (2 * 1.5 * 1.5));
  g = g / g.sum();
  // Separable Gaussian, valid region only, over the five moment planes at once (depthwise,
  // channels-last: an order of magnitude faster than one plane at a time).
  const auto gh = g.view({1, 1, 1, kWin}).expand({5, 1, 1, kWin}).contiguous();
  const auto gv = g.view({1, 1, kWin, 1}).expand({5, 1, kWin, 1}).contiguous();
  const auto depthwise = F::Conv2dFuncOptions().groups(5);
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  // Images smaller than the window are padded up to it (edge replicated).
  const int64_t ph = std::max<int64_t>(0, kWin - a.size(2)),
                pw = std::max<int64_t>(0, kWin - a.size(3));
  const auto pad = F::PadFuncOptions({0, pw, 0, ph}).mode(torch::kReplicate);
  double sum = 0;
  for (int64_t c = 0; c < a.size(1); ++c) {
    // Moments of values centred on a shared constant: no float32 cancellation in the variances.
    auto ac = a.slice(1, c, c + 1).to(torch::kFloat32),
         bc = b.slice(1, c, c + 1).to(torch::kFloat32);
    const auto k = ac.mean();
    const auto x = F::pad(ac - k, pad), y = F::pad(bc - k, pad);
    const int64_t out_rows = x.size(2) - kWin + 1;
    double channel_sum = 0;
    // In strips of output rows: bounded memory at any size.
    for (int64_t r = 0; r < out_rows; r += kRows) {
      const int64_t r1 = std::min(out_rows, r + kRows) + kWin - 1;
      auto xs = x.slice(2, r, r1), ys = y.slice(2, r, r1);
      auto m = F::conv2d(F::conv2d(torch::cat({xs, ys, xs * xs, ys * ys, xs * ys}, 1)
                                       .contiguous(at::MemoryFormat::ChannelsLast),
                                   gh, depthwise),
                         gv, depthwise);
      auto mx = m.select(1, 0), my = m.select(1, 1);
      auto sxx = m.select(1, 2) - mx * mx, syy = m.select(1, 3) - my * my,
           sxy = m.select(1, 4) - mx * my;
      mx = mx + k;
      my = my + k;
      auto map =
          ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
      channel_sum += map.to(torch::kFloat64).sum().item<double>();
    }
    sum += channel_sum / static_cast<double>(out_rows * (x.size(3) - kWin + 1));
  }
  return sum / static_cast<double>(a.size(1));
}

double linf_codes(const torch::Tensor& a, const torch::Tensor& b, int bit_depth) {
  const double q = max_code(bit_depth);
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>() * q);
}

}  // namespace cloak
