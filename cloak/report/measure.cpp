#include "cloak/report/measure.h"

#include <torch/torch.h>

#include "cloak/engine/metrics.h"

namespace cloak {

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
  r.visibility = butteraugli(original, protected_);
  r.jpeg_equivalent = jpeg_equivalent(original, r.visibility);
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
  r.visibility = run.visibility;
  // The run was fitted under the strength's JPEG, so its equivalent is no lower.
  if (detail == ReportDetail::Full)
    r.jpeg_equivalent =
        jpeg_equivalent(original, r.visibility, strength_budget(settings.strength).jpeg_quality);
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

std::string describe_jpeg_equivalent(const std::optional<int>& quality) {
  return quality ? "no more visible than a JPEG q" + std::to_string(*quality)
                 : "more visible than a JPEG q10";
}

nlohmann::json to_json(const ProtectionReport& r) {
  nlohmann::json j;
  j["quality"] = {{"linf_codes", r.linf_codes},
                  {"psnr_db", r.psnr},
                  {"ssim", r.ssim},
                  {"butteraugli_max", r.visibility.max},
                  {"butteraugli_3norm", r.visibility.norm3}};
  if (r.jpeg_equivalent) j["quality"]["jpeg_equivalent"] = *r.jpeg_equivalent;
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
