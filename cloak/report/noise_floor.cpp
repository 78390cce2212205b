#include "cloak/report/noise_floor.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cloak/engine/butteraugli.h"

namespace cloak {

namespace {

constexpr uint64_t kNoiseSeed = 0x6e6f697365;  // "noise": the floor is the same on every run
constexpr double kTolerance = 0.03;
constexpr int kMaxMeasurements = 12;

}  // namespace

NoiseCopy noise_as_visible(const torch::Tensor& original, double norm3, int bit_depth,
                           const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  if (norm3 <= 0) return {original, 0};
  auto gen = at::detail::createCPUGenerator(kNoiseSeed);
  auto sign = at::randint(0, 2, original.sizes(), gen, torch::kFloat32) * 2 - 1;
  if (mask.defined()) sign = sign * mask.to(sign.device()).gt(0).to(torch::kFloat32);
  const auto dither = at::rand(original.sizes(), gen, torch::kFloat32);
  const double levels = bit_depth == 16 ? 65535.0 : 255.0;
  auto noisy = [&](double a) {
    return (original + sign * (a * levels / 255 + dither).floor() / levels).clamp(0, 1);
  };
  // Butteraugli grows about as a power of the amplitude: each new amplitude comes from the power
  // through the last two measurements (a secant in log-log), the first from a power of 1.
  double a = 1, best_a = a, best_n = 0, best_err = std::numeric_limits<double>::infinity();
  double last_a = 0, last_n = 0;
  for (int i = 0; i < kMaxMeasurements; ++i) {
    const double n = butteraugli(original, noisy(a)).norm3;
    const double err = std::abs(n / norm3 - 1);
    if (err < best_err) best_err = err, best_a = a, best_n = n;
    if (err <= kTolerance) break;
    double power = 1;
    if (n > 0 && last_n > 0 && n != last_n && a != last_a)
      power = std::clamp(std::log(n / last_n) / std::log(a / last_a), 0.25, 4.0);
    const double next = n > 0 ? a * std::pow(norm3 / n, 1 / power) : a * 4;
    last_a = a, last_n = n;
    a = std::clamp(next, 1e-3, 255.0);
  }
  return {noisy(best_a), best_n};
}

torch::Tensor floor_mask(const torch::Tensor& mask, const torch::Tensor& original,
                         const torch::Tensor& copy) {
  if (!mask.defined()) return mask;
  const auto changed = (copy - original).abs().amax(1, true).gt(0).to(mask.device());
  return mask.gt(0).logical_or(changed).to(torch::kFloat32);
}

double floor_multiple(double shift, double floor) {
  return shift / std::max(floor, 1e-9);
}

}  // namespace cloak
