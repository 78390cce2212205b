#include <torch/torch.h>

#include <cmath>

#include "cloak/core/pixel.h"
#include "cloak/engine/eot.h"

namespace cloak {

namespace F = torch::nn::functional;

namespace {

// ITU T.81 Annex K tables.
const float kLumaTable[64] = {16,  11,  10,  16,  24, 40, 51,  61,  12,  12,  14,  19,  26,
                              58,  60,  55,  14,  13, 16, 24,  40,  57,  69,  56,  14,  17,
                              22,  29,  51,  87,  80, 62, 18,  22,  37,  56,  68,  109, 103,
                              77,  24,  35,  55,  64, 81, 104, 113, 92,  49,  64,  78,  87,
                              103, 121, 120, 101, 72, 92, 95,  98,  112, 100, 103, 99};
const float kChromaTable[64] = {17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                                24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
                                99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
                                99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};

torch::Tensor quant_table(const float* base, int quality) {
  quality = std::clamp(quality, 1, 100);
  const int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
  auto t = torch::from_blob(const_cast<float*>(base), {8, 8}).clone();
  return ((t * scale + 50) / 100).floor().clamp(1, 255);
}

torch::Tensor dct_matrix() {
  auto d = torch::empty({8, 8});
  for (int k = 0; k < 8; ++k)
    for (int n = 0; n < 8; ++n)
      d[k][n] = (k == 0 ? std::sqrt(1.0 / 8) : std::sqrt(2.0 / 8)) *
                std::cos(M_PI * (2 * n + 1) * k / 16.0);
  return d;
}

torch::Tensor round_ste(const torch::Tensor& x) {
  return x + (x.round() - x).detach();
}

// Quantises one plane (1,1,H,W), H and W multiples of 8, in [0,255] units.
torch::Tensor jpeg_plane(const torch::Tensor& p, const torch::Tensor& table) {
  static const torch::Tensor d = dct_matrix();
  const auto h = p.size(2), w = p.size(3);
  auto blocks = (p - 128).reshape({h / 8, 8, w / 8, 8}).permute({0, 2, 1, 3});
  auto coeff = torch::matmul(torch::matmul(d, blocks), d.t());
  coeff = round_ste(coeff / table) * table;
  auto back = torch::matmul(torch::matmul(d.t(), coeff), d);
  return back.permute({0, 2, 1, 3}).reshape({1, 1, h, w}) + 128;
}

}  // namespace

torch::Tensor jpeg_approx(const torch::Tensor& x, int quality) {
  const auto h = x.size(2), w = x.size(3);
  const auto ph = (16 - h % 16) % 16, pw = (16 - w % 16) % 16;
  auto v = F::pad(x * kMaxCode8, F::PadFuncOptions({0, pw, 0, ph}).mode(torch::kReplicate));
  auto luma_table = quant_table(kLumaTable, quality);
  if (x.size(1) == 1)
    return (jpeg_plane(v, luma_table) / kMaxCode8).slice(2, 0, h).slice(3, 0, w).clamp(0, 1);
  auto r = v.slice(1, 0, 1), g = v.slice(1, 1, 2), b = v.slice(1, 2, 3);
  auto y = kLumaR * r + kLumaG * g + kLumaB * b;
  auto cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
  auto cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
  auto chroma_table = quant_table(kChromaTable, quality);
  auto sub = [&](const torch::Tensor& c) {
    auto small = jpeg_plane(F::avg_pool2d(c, F::AvgPool2dFuncOptions(2)), chroma_table);
    return F::interpolate(small, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{v.size(2), v.size(3)})
                                     .mode(torch::kBilinear)
                                     .align_corners(false));
  };
  y = jpeg_plane(y, luma_table);
  cb = sub(cb) - 128;
  cr = sub(cr) - 128;
  auto rgb = torch::cat({y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb}, 1);
  return (rgb / kMaxCode8).slice(2, 0, h).slice(3, 0, w).clamp(0, 1);
}

}  // namespace cloak
