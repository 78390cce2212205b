#include "cloak/report/measure.h"
#include "cloak/core/pixel.h"

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cloak/engine/metrics.h"

namespace cloak {

namespace {

cv::Mat to_mat8(const torch::Tensor& image) {
  auto hwc =
      (image[0].permute({1, 2, 0}).clamp(0, 1) * kMaxCode8).round().to(torch::kUInt8).contiguous();
  cv::Mat m(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)),
            CV_8UC(static_cast<int>(hwc.size(2))), hwc.data_ptr());
  cv::Mat out;
  if (m.channels() == 3)
    cv::cvtColor(m, out, cv::COLOR_RGB2BGR);
  else
    out = m.clone();
  return out;
}

torch::Tensor from_mat8(const cv::Mat& m) {
  cv::Mat rgb;
  if (m.channels() == 3)
    cv::cvtColor(m, rgb, cv::COLOR_BGR2RGB);
  else
    rgb = m;
  auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, rgb.channels()}, torch::kUInt8);
  return t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div(255).contiguous();
}

}  // namespace

torch::Tensor opencv_jpeg(const torch::Tensor& image, int quality) {
  std::vector<std::uint8_t> buf;
  cv::imencode(".jpg", to_mat8(image), buf, {cv::IMWRITE_JPEG_QUALITY, quality});
  return from_mat8(cv::imdecode(buf, cv::IMREAD_UNCHANGED));
}

torch::Tensor opencv_resize(const torch::Tensor& image, double factor) {
  cv::Mat out;
  cv::resize(to_mat8(image), out, cv::Size(), factor, factor, cv::INTER_AREA);
  return from_mat8(out);
}

torch::Tensor opencv_resize_to(const torch::Tensor& image, int64_t h, int64_t w) {
  cv::Mat out;
  const bool shrink = h * w < image.size(2) * image.size(3);
  cv::resize(to_mat8(image), out, cv::Size(static_cast<int>(w), static_cast<int>(h)), 0, 0,
             shrink ? cv::INTER_AREA : cv::INTER_CUBIC);
  return from_mat8(out);
}

torch::Tensor opencv_blur(const torch::Tensor& image, double sigma) {
  cv::Mat out;
  cv::GaussianBlur(to_mat8(image), out, cv::Size(), sigma, sigma, cv::BORDER_REFLECT);
  return from_mat8(out);
}

namespace {

// Fills everything but PSNR and SSIM.
ProtectionReport measure_shifts(const std::vector<LoadedModel>& encoders,
                                const torch::Tensor& original, const torch::Tensor& protected_,
                                int bit_depth, const ProtectSettings& settings,
                                const Objective& objective, ReportDetail detail) {
  torch::NoGradGuard no_grad;
  ProtectionReport r;
  r.linf_codes = linf_codes(original, protected_, bit_depth);
  auto o = original, p = protected_;
  if (coarse_to_fine(o.size(2), o.size(3), settings)) {
    const auto [h, w] = training_size(o.size(2), o.size(3), settings);
    o = opencv_resize_to(o, h, w);
    p = opencv_resize_to(p, h, w);
  }
  r.measured_height = o.size(2);
  r.measured_width = o.size(3);
  const auto jo = opencv_jpeg(o, 75), jp = opencv_jpeg(p, 75);
  // What only the full report needs: the 50% resizes and poison's target at this size.
  const bool full = detail == ReportDetail::Full;
  torch::Tensor ro, rp, target;
  if (full) {
    ro = opencv_resize(o, 0.5);
    rp = opencv_resize(p, 0.5);
    if (settings.mode == Mode::Poison)
      target = fit_target(settings.target, o.size(2), o.size(3), o.size(1));
  }
  for (std::size_t e = 0; e < encoders.size(); ++e) {
    const auto& enc = encoders[e];
    SurrogateShift s;
    s.name = enc.spec->name;
    s.sha256 = enc.sha256;
    s.shift_jpeg75 = relative_shift(encode(enc, jp), encode(enc, jo));
    if (full) {
      auto zo = encode(enc, o), zp = encode(enc, p);
      s.shift = relative_shift(zp, zo);
      s.shift_resize50 = relative_shift(encode(enc, rp), encode(enc, ro));
      if (objective.targeted()) {
        auto zt = objective.target(zo, target.defined() ? encode(enc, target) : torch::Tensor(), e);
        s.target_closed = 1.0 - ((zp - zt).norm() / ((zo - zt).norm() + 1e-12)).item<double>();
      }
    }
    r.surrogates.push_back(s);
  }
  return r;
}

}  // namespace

ProtectionReport measure_protection(const std::vector<LoadedModel>& encoders,
                                    const torch::Tensor& original, const torch::Tensor& protected_,
                                    int bit_depth, const ProtectSettings& settings,
                                    const Objective& objective) {
  auto r = measure_shifts(encoders, original, protected_, bit_depth, settings, objective,
                          ReportDetail::Full);
  torch::NoGradGuard no_grad;
  r.psnr = psnr(original, protected_);
  r.ssim = ssim(original, protected_);
  return r;
}

ProtectionReport measure_protection(const std::vector<LoadedModel>& encoders,
                                    const torch::Tensor& original, const ProtectOutput& run,
                                    int bit_depth, const ProtectSettings& settings,
                                    ReportDetail detail) {
  auto r =
      measure_shifts(encoders, original, run.image, bit_depth, settings, *run.objective, detail);
  r.psnr = run.psnr;
  r.ssim = run.ssim;
  return r;
}

double relative_shift(const torch::Tensor& z, const torch::Tensor& z0) {
  return ((z - z0).norm() / (z0.norm() + 1e-12)).item<double>();
}

double mean_shift_jpeg75(const ProtectionReport& r) {
  double sum = 0;
  for (const auto& s : r.surrogates) sum += s.shift_jpeg75;
  return r.surrogates.empty() ? 0 : sum / static_cast<double>(r.surrogates.size());
}

nlohmann::json to_json(const ProtectionReport& r) {
  nlohmann::json j;
  j["quality"] = {{"linf_codes", r.linf_codes}, {"psnr_db", r.psnr}, {"ssim", r.ssim}};
  j["shifts_measured_at"] = {{"width", r.measured_width}, {"height", r.measured_height}};
  for (const auto& s : r.surrogates) {
    nlohmann::json e = {
        {"name", s.name}, {"sha256", s.sha256}, {"latent_shift_jpeg75", s.shift_jpeg75}};
    if (s.shift) e["latent_shift"] = *s.shift;
    if (s.shift_resize50) e["latent_shift_resize50"] = *s.shift_resize50;
    if (s.target_closed) e["target_closed"] = *s.target_closed;
    j["surrogates"].push_back(e);
  }
  return j;
}

}  // namespace cloak
