#include "cloak/engine/eot.h"

#include <torch/torch.h>

#include <cmath>

namespace cloak {

namespace F = torch::nn::functional;

Transform sample_transform(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Transform t;
  const double pick = u(rng);
  if (pick < 0.25) {
    t.kind = Transform::Kind::Identity;
  } else if (pick < 0.6) {
    t.kind = Transform::Kind::Jpeg;
    t.jpeg_quality = 50 + static_cast<int>(u(rng) * 46);
  } else if (pick < 0.85) {
    t.kind = Transform::Kind::Resize;
    t.scale = 0.5 + 0.4 * u(rng);
    t.resize_mode = static_cast<int>(u(rng) * 3) % 3;
  } else {
    t.kind = Transform::Kind::NoiseBlur;
    t.blur_sigma = 0.3 + 0.7 * u(rng);
    t.noise_sigma = 0.02 * u(rng);
    t.noise_seed = rng();
  }
  return t;
}

namespace {

torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w, int mode) {
  auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w});
  if (mode == 0) return F::interpolate(x, opts.mode(torch::kArea));
  if (mode == 1)
    opts.mode(torch::kBilinear);
  else
    opts.mode(torch::kBicubic);
  opts.align_corners(false);
  return F::interpolate(x, opts).clamp(0, 1);
}

torch::Tensor gaussian_blur(const torch::Tensor& x, double sigma) {
  auto k1 = torch::arange(-2, 3, torch::kFloat32);
  k1 = torch::exp(-k1 * k1 / (2 * sigma * sigma));
  k1 = k1 / k1.sum();
  const auto c = x.size(1);
  auto k = torch::outer(k1, k1).expand({c, 1, 5, 5}).contiguous();
  auto padded = F::pad(x, F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReplicate));
  return F::conv2d(padded, k, F::Conv2dFuncOptions().groups(c));
}

}  // namespace

torch::Tensor apply_transform(const Transform& t, const torch::Tensor& x) {
  switch (t.kind) {
    case Transform::Kind::Identity:
      return x;
    case Transform::Kind::Jpeg:
      return jpeg_approx(x, t.jpeg_quality);
    case Transform::Kind::Resize: {
      const auto h = x.size(2), w = x.size(3);
      auto small = resize_to(x, std::max<int64_t>(8, std::lround(h * t.scale)),
                             std::max<int64_t>(8, std::lround(w * t.scale)), t.resize_mode);
      return resize_to(small, h, w, 1);
    }
    case Transform::Kind::NoiseBlur: {
      auto gen = at::detail::createCPUGenerator(t.noise_seed);
      auto noise = at::randn(x.sizes(), gen, x.options()) * t.noise_sigma;
      return (gaussian_blur(x, t.blur_sigma) + noise).clamp(0, 1);
    }
  }
  return x;
}

}  // namespace cloak
