#include "cloak/engine/scielab.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "cloak/engine/vision.h"

namespace cloak {

namespace F = torch::nn::functional;
using torch::Tensor;

namespace {

// Linear sRGB to CIE XYZ (D65), and XYZ to Poirson and Wandell's opponent channels: luminance,
// red-green, blue-yellow (the rows S-CIELAB uses).
const double kRgbToXyz[3][3] = {{0.4124564, 0.3575761, 0.1804375},
                                {0.2126729, 0.7151522, 0.0721750},
                                {0.0193339, 0.1191920, 0.9503041}};
const double kXyzToOpponent[3][3] = {
    {0.279, 0.72, -0.107}, {-0.449, 0.29, -0.077}, {0.086, -0.59, 0.501}};

// Each opponent channel's spatial filter: a weighted sum of Gaussians, spreads in degrees of
// visual angle (Zhang and Wandell's). Luminance's third, 7-degree term (weight -0.1177), a broad
// surround that only lowers the response to areas larger than the pictures judged here, is left
// out and its first two weights renormalised; every filter sums to 1, so uniform areas pass as
// they are.
struct Term {
  double weight, spread;
};
const std::array<std::array<Term, 2>, 3> kFilters = {{
    {{{1.00327 / 1.117686, 0.05}, {0.114416 / 1.117686, 0.225}}},
    {{{0.616725, 0.0685}, {0.383275, 0.826}}},
    {{{0.567885, 0.0920}, {0.432115, 0.6451}}},
}};

Tensor matrix(const double (&m)[3][3], const torch::TensorOptions& opt) {
  return torch::tensor(
             {m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2]},
             torch::kFloat64)
      .view({3, 3})
      .to(opt);
}

// A Gaussian blur of `sigma` pixels. A wide one is done on the image shrunk by a power of two f
// (averaging f x f blocks), with the blur the shrinking and the enlarging back add taken off
// (about f^2 / 6 of variance): what a Gaussian that wide passes, the shrinking keeps.
Tensor blur(const Tensor& x, double sigma) {
  int64_t f = 1;
  while (sigma >= 12.0 * f && std::min(x.size(2), x.size(3)) >= 32 * f) f *= 2;
  if (f == 1) return gauss_blur(x, sigma);
  const auto small = F::avg_pool2d(x, F::AvgPool2dFuncOptions(f).stride(f).ceil_mode(true));
  const double s = std::sqrt(sigma * sigma - f * f / 6.0) / f;
  return F::interpolate(gauss_blur(small, s), F::InterpolateFuncOptions()
                                                  .size(std::vector<int64_t>{x.size(2), x.size(3)})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(false));
}

Tensor mix(const Tensor& m, const Tensor& x) {
  return torch::einsum("ij,bjhw->bihw", {m, x});
}

// CIELAB from XYZ normalised by the white point.
Tensor lab(const Tensor& xyz) {
  const double d = 6.0 / 29;
  const auto f = torch::where(xyz > d * d * d, xyz.clamp_min(d * d * d).pow(1.0 / 3),
                              xyz / (3 * d * d) + 4.0 / 29);
  const auto fx = f.select(1, 0), fy = f.select(1, 1), fz = f.select(1, 2);
  return torch::stack({116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)}, 1);
}

// The image (1,3,H,W) as S-CIELAB sees it: opponent channels, each filtered, back to XYZ, to Lab.
Tensor filtered_lab(const Tensor& srgb, const Tensor& to_opponent, const Tensor& from_opponent,
                    const Tensor& white, double ppd) {
  const auto o = mix(to_opponent, srgb_to_linear(srgb));
  std::vector<Tensor> channels;
  for (int c = 0; c < 3; ++c) {
    const auto oc = o.narrow(1, c, 1);
    Tensor sum;
    for (const Term& t : kFilters[c]) {
      const auto term = t.weight * blur(oc, t.spread * ppd);
      sum = sum.defined() ? sum + term : term;
    }
    channels.push_back(sum);
  }
  return lab(mix(from_opponent, torch::cat(channels, 1)) / white);
}

}  // namespace

torch::Tensor scielab_difference(const torch::Tensor& reference, const torch::Tensor& distorted,
                                 double pixels_per_degree) {
  const auto dtype = distorted.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat32;
  const auto opt = distorted.options().dtype(dtype);
  const auto xyz = matrix(kRgbToXyz, opt);
  const auto to_opponent = matrix(kXyzToOpponent, opt).matmul(xyz);
  const auto from_opponent = torch::linalg::inv(matrix(kXyzToOpponent, opt));
  const auto white = xyz.sum(1).view({1, 3, 1, 1});
  Tensor lab0;
  {
    torch::NoGradGuard no_grad;
    lab0 = filtered_lab(as_rgb(reference).to(dtype), to_opponent, from_opponent, white,
                        pixels_per_degree);
  }
  const auto lab1 = filtered_lab(as_rgb(distorted).to(dtype), to_opponent, from_opponent, white,
                                 pixels_per_degree);
  return (lab1 - lab0).square().sum(1).clamp_min(1e-18).sqrt()[0];
}

}  // namespace cloak
