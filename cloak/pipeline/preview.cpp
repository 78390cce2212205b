#include "cloak/pipeline/preview.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "cloak/engine/vision.h"
#include "cloak/pipeline/protect_file.h"

namespace cloak {

namespace F = torch::nn::functional;

torch::Tensor preview_tensor(const Image& image, int size) {
  auto x = as_rgb(image_tensor(image));
  const double scale = std::min(1.0, static_cast<double>(size) / std::max(x.size(2), x.size(3)));
  if (scale < 1)
    x = F::interpolate(
        x, F::InterpolateFuncOptions()
               .size(std::vector<int64_t>{std::max<int64_t>(8, std::lround(x.size(2) * scale)),
                                          std::max<int64_t>(8, std::lround(x.size(3) * scale))})
               .mode(torch::kArea));
  return x.contiguous();
}

torch::Tensor visibility_heatmap(const torch::Tensor& image, const torch::Tensor& distmap) {
  torch::NoGradGuard no_grad;
  auto gray = image.to(torch::kFloat32).mean(1, true) * 0.5 + 0.25;
  auto d = distmap.to(torch::kFloat32).view({1, 1, distmap.size(0), distmap.size(1)});
  // Colour along green (0.5) -> yellow (1) -> red (2); opacity rises from 0 at 0.5 to 0.85 at 1.
  auto t = d.clamp(0.5, 2.0);
  auto red = ((t - 0.5) * 2).clamp(0, 1), green = (2 - t).clamp(0, 1);
  auto heat = torch::cat({red, green, torch::zeros_like(red)}, 1);
  auto alpha = ((d - 0.5) * 1.7).clamp(0, 0.85);
  return (gray * (1 - alpha) + heat * alpha).contiguous();
}

Image picture(const torch::Tensor& rgb) {
  const auto c = rgb.to(torch::kFloat32).clamp(0, 1).contiguous();
  Image img;
  img.width = static_cast<int>(c.size(3));
  img.height = static_cast<int>(c.size(2));
  img.color.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return img;
}

}  // namespace cloak
