#include "cloak/engine/vision.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace cloak {

namespace F = torch::nn::functional;

torch::Tensor as_rgb(const torch::Tensor& x) {
  return x.size(1) == 1 ? x.expand({x.size(0), 3, x.size(2), x.size(3)}) : x;
}

torch::Tensor srgb_to_linear(const torch::Tensor& v) {
  return torch::where(v <= 0.04045, v / 12.92, ((v.clamp_min(0) + 0.055) / 1.055).pow(2.4));
}

std::vector<float> gauss_taps(double sigma) {
  const int r = std::max(1, static_cast<int>(2.25 * sigma));
  std::vector<float> k;
  for (int i = -r; i <= r; ++i)
    k.push_back(static_cast<float>(std::exp(-i * i / (2 * sigma * sigma))));
  return k;
}

torch::Tensor conv_axis(const torch::Tensor& x, const torch::Tensor& taps, int axis) {
  const int64_t c = x.size(1), n = taps.numel(), r = n / 2;
  auto w = axis == 3 ? taps.view({1, 1, 1, n}) : taps.view({1, 1, n, 1});
  return F::conv2d(x, w.expand({c, 1, w.size(2), w.size(3)}).contiguous(),
                   F::Conv2dFuncOptions().groups(c).padding(
                       axis == 3 ? std::vector<int64_t>{0, r} : std::vector<int64_t>{r, 0}));
}

torch::Tensor gauss_blur(const torch::Tensor& x, double sigma) {
  const auto taps = torch::tensor(gauss_taps(sigma), x.options());
  auto ones_w = torch::ones({1, 1, 1, x.size(3)}, x.options());
  auto ones_h = torch::ones({1, 1, x.size(2), 1}, x.options());
  auto h = conv_axis(x, taps, 3) / conv_axis(ones_w, taps, 3);
  return conv_axis(h, taps, 2) / conv_axis(ones_h, taps, 2);
}

}  // namespace cloak
