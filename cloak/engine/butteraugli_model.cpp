#include "cloak/engine/butteraugli_model.h"
#include "cloak/engine/vision.h"

#include <torch/torch.h>

#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace cloak {

namespace F = torch::nn::functional;
using torch::Tensor;

namespace {

// The settings engine/butteraugli.cpp gives libjxl.
constexpr double kIntensityTarget = 80, kHfAsymmetry = 0.8;

Tensor safe_sqrt(const Tensor& x) {
  return x.clamp_min(1e-18).sqrt();
}

// Separable blur of every channel of (1,C,H,W). Near the borders each pass is renormalised by the
// taps that fall inside the image; sigma 1.2 (five taps) mirrors the border instead, as libjxl's
// Separable5 does.
Tensor blur(const Tensor& x, double sigma) {
  const auto taps = torch::tensor(gauss_taps(sigma), x.options());
  if (taps.numel() == 5) {
    const auto k = taps / taps.sum();
    auto mirror = [&](int64_t n) {  // -2 -1 | 0 .. n-1 | n n+1  ->  1 0 | ... | n-1 n-2
      auto i = torch::arange(-2, n + 2, torch::kLong);
      i = torch::where(i < 0, -i - 1, torch::where(i >= n, 2 * n - 1 - i, i));
      return i.clamp(0, n - 1).to(x.device());
    };
    auto h = conv_axis(x.index_select(3, mirror(x.size(3))), k, 3).narrow(3, 2, x.size(3));
    return conv_axis(h.index_select(2, mirror(x.size(2))), k, 2).narrow(2, 2, x.size(2));
  }
  return gauss_blur(x, sigma);
}

// Opsin dynamics: the linear image (x the intensity target) mixed into three cone-like
// absorbances, each scaled by the log-like response of its locally blurred level; then an
// opponent space: X (red-green), Y (luminance), B (blue).
Tensor opsin(const Tensor& linear) {
  const auto opt = linear.options();
  const auto mix = torch::tensor({{0.29956550340058319, 0.63373087833825936, 0.077705617820981968},
                                  {0.22158691104574774, 0.69391388044116142, 0.0987313588422},
                                  {0.02, 0.02, 0.20480129041026129}},
                                 opt);
  const auto bias = torch::tensor({1.7557483643287353, 1.7557483643287353, 12.226454707163354}, opt)
                        .view({1, 3, 1, 1});
  auto absorb = [&](const Tensor& rgb) {
    return torch::einsum("ij,bjhw->bihw", {mix, rgb * kIntensityTarget}) + bias;
  };
  auto pre = torch::max(absorb(blur(linear, 1.2)), bias).clamp_min(1e-4);
  auto gamma =
      19.245013259874995 * torch::log(pre.clamp_min(0) + 9.9710635769299145) - 23.16046239805755;
  auto sensitivity = (gamma / pre).clamp_min(1e-4);
  auto cur = torch::max(absorb(linear) * sensitivity, bias);
  auto c0 = cur.select(1, 0), c1 = cur.select(1, 1);
  return torch::stack({c0 - c1, c0 + c1, cur.select(1, 2)}, 1);
}

Tensor remove_range(const Tensor& x, double w) {
  return torch::sign(x) * (x.abs() - w).clamp_min(0);
}
Tensor amplify_range(const Tensor& x, double w) {
  return torch::where(x > w, x + w, torch::where(x < -w, x - w, 2 * x));
}
Tensor maximum_clamp(const Tensor& v, double m) {
  constexpr double kMul = 0.724216145665;
  return torch::where(v >= m, (v - m) * kMul + m, torch::where(v < -m, (v + m) * kMul - m, v));
}

// The image in four frequency bands: lf (X, Y, B as "vals"), mf (X, Y, B), hf and uhf (X, Y).
struct Bands {
  Tensor lf, mf, hf, uhf;
};

Bands separate_frequencies(const Tensor& xyb) {
  const auto lf = blur(xyb, 7.15593339443);
  auto mf_all = xyb - lf;
  const auto mf_blurred = blur(mf_all, 3.22489901262);
  auto hf_x = mf_all.select(1, 0) - mf_blurred.select(1, 0);
  auto hf_y = mf_all.select(1, 1) - mf_blurred.select(1, 1);
  const auto mf =
      torch::stack({remove_range(mf_blurred.select(1, 0), 0.29),
                    amplify_range(mf_blurred.select(1, 1), 0.1), mf_blurred.select(1, 2)},
                   1);
  // Red-green suppressed where luminance changes.
  constexpr double kSuppress = 46.0, kS = 0.653020556257;
  hf_x = hf_x * (kS + (1 - kS) * kSuppress / (hf_y * hf_y + kSuppress));
  const auto hf_blurred = blur(torch::stack({hf_x, hf_y}, 1), 1.56416327805);
  const auto bx = hf_blurred.select(1, 0),
             by = maximum_clamp(hf_blurred.select(1, 1), 28.4691806922);
  const auto uhf_x = remove_range(hf_x - bx, 0.04);
  const auto uhf_y = maximum_clamp(hf_y - by, 5.19175294647) * 2.69313763794;
  const auto hf = torch::stack({remove_range(bx, 1.5), amplify_range(by * 2.155, 0.132)}, 1);
  const auto x = lf.select(1, 0), y = lf.select(1, 1), b = lf.select(1, 2);
  const auto vals = torch::stack(
      {x * 32.2217497012, y * 13.7697791434, (b - 0.362267051518 * y) * 47.504615728}, 1);
  return {vals, mf, hf, torch::stack({uhf_x, uhf_y}, 1)};
}

// Malta's sixteen oriented lines through the centre, as (dx, dy) taps: five taps spread over nine
// pixels for the lower bands, up to nine adjacent ones for the highest (where libjxl repeats four).
using Line = std::vector<std::array<int, 2>>;
const std::array<Line, 16>& malta_lines(bool low) {
  static const std::array<Line, 16> lf = {{
      {{-4, 0}, {-2, 0}, {0, 0}, {2, 0}, {4, 0}},
      {{0, -4}, {0, -2}, {0, 0}, {0, 2}, {0, 4}},
      {{-3, -3}, {-2, -2}, {0, 0}, {2, 2}, {3, 3}},
      {{3, -3}, {2, -2}, {0, 0}, {-2, 2}, {-3, 3}},
      {{1, -4}, {1, -2}, {0, 0}, {-1, 2}, {-1, 4}},
      {{-1, -4}, {-1, -2}, {0, 0}, {1, 2}, {1, 4}},
      {{-4, -1}, {-2, -1}, {0, 0}, {2, 1}, {4, 1}},
      {{-4, 1}, {-2, 1}, {0, 0}, {2, -1}, {4, -1}},
      {{-2, -3}, {-1, -2}, {0, 0}, {1, 2}, {2, 3}},
      {{2, -3}, {1, -2}, {0, 0}, {-1, 2}, {-2, 3}},
      {{-3, -2}, {-2, -1}, {0, 0}, {2, 1}, {3, 2}},
      {{3, -2}, {2, -1}, {0, 0}, {-2, 1}, {-3, 2}},
      {{-4, 2}, {-2, 1}, {0, 0}, {2, -1}, {4, -2}},
      {{-4, -2}, {-2, -1}, {0, 0}, {2, 1}, {4, 2}},
      {{-2, -4}, {-1, -2}, {0, 0}, {1, 2}, {2, 4}},
      {{2, -4}, {1, -2}, {0, 0}, {-1, 2}, {-2, 4}},
  }};
  static const Line horizontal = {{-4, 0}, {-3, 0}, {-2, 0}, {-1, 0}, {0, 0},
                                  {1, 0},  {2, 0},  {3, 0},  {4, 0}};
  static const Line vertical = {{0, -4}, {0, -3}, {0, -2}, {0, -1}, {0, 0},
                                {0, 1},  {0, 2},  {0, 3},  {0, 4}};
  static const Line steep_left = {{1, -4}, {1, -3}, {1, -2}, {0, -1}, {0, 0},
                                  {0, 1},  {-1, 2}, {-1, 3}, {-1, 4}};
  static const Line steep_right = {{-1, -4}, {-1, -3}, {-1, -2}, {0, -1}, {0, 0},
                                   {0, 1},   {1, 2},   {1, 3},   {1, 4}};
  static const Line shallow_down = {{-4, -1}, {-3, -1}, {-2, -1}, {-1, 0}, {0, 0},
                                    {1, 0},   {2, 1},   {3, 1},   {4, 1}};
  static const Line shallow_up = {{-4, 1}, {-3, 1}, {-2, 1}, {-1, 0}, {0, 0},
                                  {1, 0},  {2, -1}, {3, -1}, {4, -1}};
  static const std::array<Line, 16> hf = {{
      horizontal,
      vertical,
      {{-3, -3}, {-2, -2}, {-1, -1}, {0, 0}, {1, 1}, {2, 2}, {3, 3}},
      {{3, -3}, {2, -2}, {1, -1}, {0, 0}, {-1, 1}, {-2, 2}, {-3, 3}},
      steep_left,
      steep_right,
      shallow_down,
      shallow_up,
      {{-2, -3}, {-1, -2}, {-1, -1}, {0, 0}, {1, 1}, {1, 2}, {2, 3}},
      {{2, -3}, {1, -2}, {1, -1}, {0, 0}, {-1, 1}, {-1, 2}, {-2, 3}},
      {{-3, -2}, {-2, -1}, {-1, -1}, {0, 0}, {1, 1}, {2, 1}, {3, 2}},
      {{3, -2}, {2, -1}, {1, -1}, {0, 0}, {-1, 1}, {-2, 1}, {-3, 2}},
      shallow_up,
      shallow_down,
      steep_right,
      steep_left,
  }};
  return low ? lf : hf;
}

// How far the distorted value falls outside [small, big] times the reference's magnitude, on the
// reference's side of zero (short of it: positive, past it: negative), signed as the reference.
Tensor outside_band(const Tensor& i0, const Tensor& i1, double small, double big) {
  const auto side = torch::where(i0 < 0, -torch::ones_like(i0), torch::ones_like(i0));
  const auto along = side * i1;
  return side * ((small * i0.abs() - along).clamp_min(0) - (along - big * i0.abs()).clamp_min(0));
}

// Malta's difference of one band (1,1,H,W): a scaled difference with half-open terms for change
// toward zero or past the reference, summed along each line, squared, summed over the lines.
Tensor malta(const Tensor& l0, const Tensor& l1, double w_0gt1, double w_0lt1, double norm1,
             bool low) {
  constexpr double kLen = 3.75;
  const double mulli = low ? 0.611612573796 : 0.39905817637;
  const double n0 = mulli * std::sqrt(0.5 * w_0gt1) / (kLen * 2 + 1) * norm1;
  const double n1 = mulli * std::sqrt(0.33 * w_0lt1) / (kLen * 2 + 1) * norm1;
  const auto absval = 0.5 * (l0.abs() + l1.abs());
  const auto d = (n0 * (l0 - l1) + n1 * outside_band(l0, l1, 0.55, 1.05)) / (norm1 + absval);
  const int64_t h = d.size(2), w = d.size(3);
  const auto padded = F::pad(d, F::PadFuncOptions({4, 4, 4, 4}));
  Tensor total;
  for (const auto& line : malta_lines(low)) {
    Tensor sum;
    for (const auto& [dx, dy] : line) {
      const auto tap = padded.narrow(2, 4 + dy, h).narrow(3, 4 + dx, w);
      sum = sum.defined() ? sum + tap : tap;
    }
    total = total.defined() ? total + sum.square() : sum.square();
  }
  return total;
}

Tensor l2_asymmetric(const Tensor& i0, const Tensor& i1, double w_0gt1, double w_0lt1) {
  return 0.8 * w_0gt1 * (i0 - i1).square() + 0.8 * w_0lt1 * outside_band(i0, i1, 0.4, 1).square();
}

// Of each pixel and its eight neighbours three pixels away, a weighted mean of the three smallest
// (the pixel counting also twice over, doubled): masking only where the surroundings are busy too.
Tensor fuzzy_erosion(const Tensor& from) {
  constexpr int kStep = 3;
  const int64_t h = from.size(2), w = from.size(3);
  const auto padded = F::pad(from, F::PadFuncOptions({kStep, kStep, kStep, kStep})
                                       .value(std::numeric_limits<double>::infinity()));
  std::vector<Tensor> candidates = {from, 2 * from, 2 * from};
  for (int dy = -kStep; dy <= kStep; dy += kStep)
    for (int dx = -kStep; dx <= kStep; dx += kStep)
      if (dx || dy) candidates.push_back(padded.narrow(2, kStep + dy, h).narrow(3, kStep + dx, w));
  const auto smallest = std::get<0>(torch::cat(candidates, 1).topk(3, 1, false, true));
  return 0.45 * smallest.narrow(1, 0, 1) + 0.3 * smallest.narrow(1, 1, 1) +
         0.25 * smallest.narrow(1, 2, 1);
}

Tensor mask_curve(const Tensor& delta, double offset, double scaler, double mul) {
  constexpr double kGlobalScale = 1.0 / (17.8 * 0.79079917404);
  return (kGlobalScale * (1 + mul / (scaler * delta + offset))).square();
}

// The distance map (1,1,H,W) at one resolution, from linear RGB.
Tensor diffmap_at(const Tensor& linear0, const Tensor& linear1) {
  Bands b0;
  {
    torch::NoGradGuard no_grad;
    b0 = separate_frequencies(opsin(linear0));
  }
  const Bands b1 = separate_frequencies(opsin(linear1));
  auto band = [](const Tensor& t, int64_t c) { return t.narrow(1, c, 1); };
  const double a = kHfAsymmetry, sa = std::sqrt(kHfAsymmetry);
  auto ac_y =
      malta(band(b0.uhf, 1), band(b1.uhf, 1), 1.10039032555 * a, 1.10039032555 / a, 71.7800275169,
            false) +
      malta(band(b0.hf, 1), band(b1.hf, 1), 18.7237414387 * sa, 18.7237414387 / sa, 4498534.45232,
            true) +
      malta(band(b0.mf, 1), band(b1.mf, 1), 37.0819870399, 37.0819870399, 130262059.556, true);
  auto ac_x =
      malta(band(b0.uhf, 0), band(b1.uhf, 0), 173.5 * a, 173.5 / a, 5.0, false) +
      malta(band(b0.hf, 0), band(b1.hf, 0), 6923.99476109 * sa, 6923.99476109 / sa, 8051.15833247,
            true) +
      malta(band(b0.mf, 0), band(b1.mf, 0), 8246.75321353, 8246.75321353, 1009002.70582, true);
  ac_x = ac_x + l2_asymmetric(band(b0.hf, 0), band(b1.hf, 0), 400.0 * a, 400.0 / a) +
         2150.0 * (band(b0.mf, 0) - band(b1.mf, 0)).square();
  ac_y = ac_y +
         l2_asymmetric(band(b0.hf, 1), band(b1.hf, 1), 1.50815703118 * a, 1.50815703118 / a) +
         10.6195433239 * (band(b0.mf, 1) - band(b1.mf, 1)).square();
  const auto ac_b = 16.2176043152 * (band(b0.mf, 2) - band(b1.mf, 2)).square();
  const auto dc_weights =
      torch::tensor({29.2353797994, 0.844626970982, 0.703646627719}, linear1.options())
          .view({1, 3, 1, 1});
  const auto dc = (dc_weights * (b0.lf - b1.lf).square()).sum(1, true);

  // Masking by high-frequency activity, and the difference in that activity.
  auto activity = [&band](const Bands& b) {
    const auto x = (band(b.uhf, 0) + band(b.hf, 0)) * 2.5;
    const auto y = band(b.uhf, 1) * 0.4 + band(b.hf, 1) * 0.4;
    constexpr double kMul = 6.19424080439, kBias = 12.61050594197;
    const auto m = safe_sqrt(x * x + y * y);
    return blur((kMul * m + kMul * kBias).sqrt() - std::sqrt(kMul * kBias), 2.7);
  };
  Tensor blurred0, mask;
  {
    torch::NoGradGuard no_grad;
    blurred0 = activity(b0);
    mask = fuzzy_erosion(blurred0);
  }
  ac_y = ac_y + 10.0 * (blurred0 - activity(b1)).square();
  const auto ac = ac_x + ac_y + ac_b;
  return safe_sqrt(dc * mask_curve(mask, 0.20025578522, 3.87449418804, 0.505054525019) +
                   ac * mask_curve(mask, 0.829591754942, 0.451936922203, 2.5485944793));
}

}  // namespace

torch::Tensor butteraugli_model(const torch::Tensor& reference, const torch::Tensor& distorted) {
  const int64_t h = distorted.size(2), w = distorted.size(3);
  if (h < 8 || w < 8) return torch::zeros({h, w}, distorted.options());
  // float32, or float64 when given (to check the gradient).
  const auto dtype = distorted.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat32;
  Tensor linear0;
  {
    torch::NoGradGuard no_grad;
    linear0 = srgb_to_linear(as_rgb(reference).to(dtype));
  }
  const auto linear1 = srgb_to_linear(as_rgb(distorted).to(dtype));
  auto map = diffmap_at(linear0, linear1);
  if ((h + 1) / 2 >= 8 && (w + 1) / 2 >= 8) {
    auto half = [](const Tensor& t) {
      return F::avg_pool2d(t, F::AvgPool2dFuncOptions(2).stride(2).ceil_mode(true));
    };
    Tensor half0;
    {
      torch::NoGradGuard no_grad;
      half0 = half(linear0);
    }
    const auto sub = diffmap_at(half0, half(linear1));
    const auto up =
        sub.repeat_interleave(2, 2).repeat_interleave(2, 3).narrow(2, 0, h).narrow(3, 0, w);
    map = map * (1 - 0.3 * 0.5) + 0.5 * up;
  }
  return map[0][0];
}

torch::Tensor butteraugli_norm3(const torch::Tensor& distmap) {
  const auto d = distmap.to(torch::kFloat64);
  return ((d.pow(3).mean().pow(1.0 / 3) + d.pow(6).mean().pow(1.0 / 6) +
           d.pow(12).mean().pow(1.0 / 12)) /
          3)
      .to(distmap.scalar_type());
}

}  // namespace cloak
