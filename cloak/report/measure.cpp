#include "cloak/report/measure.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "cloak/engine/cancel.h"
#include "cloak/engine/metrics.h"
#include "cloak/report/noise_floor.h"

namespace cloak {

namespace {

// Fills everything but the quality figures, with the floor for a protection of visibility `v`.
ProtectionReport measure_shifts(const std::vector<LoadedModel>& encoders,
                                const torch::Tensor& original, const torch::Tensor& protected_,
                                int bit_depth, const ProtectSettings& settings,
                                const Objective& objective, const Visibility& v,
                                const torch::Tensor& mask, ReportDetail detail) {
  torch::NoGradGuard no_grad;
  ProtectionReport r;
  r.linf_codes = linf_codes(original, protected_, bit_depth);
  // The noise copy is made as visible at full size, then goes where the protected copy goes.
  const NoiseCopy noise =
      noise_as_visible(original, v.norm3, bit_depth, floor_mask(mask, original, protected_));
  r.floor_norm3 = noise.norm3;
  auto o = original, p = protected_, n = noise.image;
  if (coarse_to_fine(o.size(2), o.size(3), settings)) {
    const auto [h, w] = training_size(o.size(2), o.size(3), settings);
    o = opencv_resize_to(o, h, w);
    p = opencv_resize_to(p, h, w);
    n = opencv_resize_to(n, h, w);
  }
  r.measured_height = o.size(2);
  r.measured_width = o.size(3);
  const auto jo = opencv_jpeg(o, 75), jp = opencv_jpeg(p, 75), jn = opencv_jpeg(n, 75);
  // What only the full report needs: the 50% resizes and poison's target at this size.
  const bool full = detail == ReportDetail::Full;
  torch::Tensor ro, rp, rn, target, jtarget;
  if (full) {
    ro = opencv_resize(o, 0.5);
    rp = opencv_resize(p, 0.5);
    rn = opencv_resize(n, 0.5);
    if (settings.mode == Mode::Poison) {
      target = fit_target(settings.target, o.size(2), o.size(3), o.size(1));
      jtarget = opencv_jpeg(target, 75);
    }
  }
  for (std::size_t e = 0; e < encoders.size(); ++e) {
    stop_if_cancelled();
    const auto& enc = encoders[e];
    SurrogateShift s;
    s.name = enc.spec->name;
    s.sha256 = enc.sha256;
    const auto zjo = encode(enc, jo), zjp = encode(enc, jp), zjn = encode(enc, jn);
    s.shift_jpeg75 = relative_shift(zjp, zjo);
    s.floor_jpeg75 = relative_shift(zjn, zjo);
    if (full) {
      auto zo = encode(enc, o), zp = encode(enc, p), zro = encode(enc, ro);
      s.shift = relative_shift(zp, zo);
      s.floor = relative_shift(encode(enc, n), zo);
      s.shift_resize50 = relative_shift(encode(enc, rp), zro);
      s.floor_resize50 = relative_shift(encode(enc, rn), zro);
      if (objective.targeted()) {
        const auto target_of = [&](const torch::Tensor& z, const torch::Tensor& image) {
          return objective.target(z, image.defined() ? encode(enc, image) : torch::Tensor(), e);
        };
        s.toward = toward_target(zp, zo, target_of(zo, target));
        const auto zjt = target_of(zjo, jtarget);
        s.toward_jpeg75 = toward_target(zjp, zjo, zjt);
        s.floor_toward_jpeg75 = toward_target(zjn, zjo, zjt);
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
                                    const Objective& objective, const torch::Tensor& mask) {
  const auto visibility = butteraugli(original, protected_);
  auto r = measure_shifts(encoders, original, protected_, bit_depth, settings, objective,
                          visibility, mask, ReportDetail::Full);
  torch::NoGradGuard no_grad;
  r.psnr = psnr(original, protected_);
  r.ssim = ssim(original, protected_);
  r.visibility = visibility;
  r.jpeg_equivalent = jpeg_equivalent(original, r.visibility);
  return r;
}

ProtectionReport measure_protection(const std::vector<LoadedModel>& encoders,
                                    const torch::Tensor& original, const ProtectOutput& run,
                                    int bit_depth, const ProtectSettings& settings,
                                    ReportDetail detail) {
  auto r = measure_shifts(encoders, original, run.image, bit_depth, settings, *run.objective,
                          run.visibility, run.mask, detail);
  r.psnr = run.psnr;
  r.ssim = run.ssim;
  r.visibility = run.visibility;
  // A run fitted under the strength's JPEG at full size has an equivalent no lower.
  if (detail == ReportDetail::Full)
    r.jpeg_equivalent = judged_at_training_size(original.size(2), original.size(3), settings)
                            ? jpeg_equivalent(original, r.visibility)
                            : jpeg_equivalent(original, r.visibility,
                                              strength_budget(settings.strength).jpeg_quality);
  return r;
}

double relative_shift(const torch::Tensor& z, const torch::Tensor& z0) {
  return ((z - z0).norm() / (z0.norm() + 1e-12)).item<double>();
}

double toward_target(const torch::Tensor& z, const torch::Tensor& z0, const torch::Tensor& zt) {
  const auto way = zt - z0;
  return ((z - z0).mul(way).sum() / (way.square().sum() + 1e-12)).item<double>();
}

double toward_multiple(const SurrogateShift& s) {
  return floor_multiple(*s.toward_jpeg75, std::abs(*s.floor_toward_jpeg75));
}

Verdict judge(double shift, double floor, Strength strength) {
  const auto budget = strength_budget(strength);
  const double multiple = floor_multiple(shift, floor);
  return {shift, floor, multiple,
          shift >= budget.min_shift_jpeg75 && multiple >= budget.min_floor_multiple};
}

Verdict judge(const ProtectionReport& r, Strength strength) {
  double shift = 0, floor = 0;
  for (const auto& s : r.surrogates) {
    shift += s.shift_jpeg75 / static_cast<double>(r.surrogates.size());
    floor += s.floor_jpeg75 / static_cast<double>(r.surrogates.size());
  }
  return judge(shift, floor, strength);
}

nlohmann::json to_json(const Verdict& v, Strength strength) {
  const auto budget = strength_budget(strength);
  return {{"mean_latent_shift_jpeg75", v.shift},
          {"mean_noise_floor_jpeg75", v.floor},
          {"multiple_of_floor_jpeg75", v.multiple},
          {"min_latent_shift_jpeg75", budget.min_shift_jpeg75},
          {"min_multiple_of_floor_jpeg75", budget.min_floor_multiple},
          {"protected", v.protected_}};
}

std::string describe(const Verdict& v, Strength strength) {
  const auto budget = strength_budget(strength);
  char line[256];
  std::snprintf(line, sizeof line,
                "%s: after JPEG q75 the latent shift %.3f is %.2fx what noise as visible keeps "
                "(%.3f); %s asks for %.2f and %.2fx",
                v.protected_ ? "protected" : "NOT protected", v.shift, v.multiple, v.floor,
                to_string(strength).c_str(), budget.min_shift_jpeg75, budget.min_floor_multiple);
  return line;
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
  j["noise_floor"] = {{"butteraugli_3norm", r.floor_norm3}};
  for (const auto& s : r.surrogates) {
    nlohmann::json e = {
        {"name", s.name},
        {"sha256", s.sha256},
        {"latent_shift_jpeg75", s.shift_jpeg75},
        {"noise_floor_jpeg75", s.floor_jpeg75},
        {"multiple_of_floor_jpeg75", floor_multiple(s.shift_jpeg75, s.floor_jpeg75)}};
    if (s.shift) {
      e["latent_shift"] = *s.shift;
      e["noise_floor"] = *s.floor;
      e["multiple_of_floor"] = floor_multiple(*s.shift, *s.floor);
    }
    if (s.shift_resize50) {
      e["latent_shift_resize50"] = *s.shift_resize50;
      e["noise_floor_resize50"] = *s.floor_resize50;
      e["multiple_of_floor_resize50"] = floor_multiple(*s.shift_resize50, *s.floor_resize50);
    }
    if (s.toward) {
      e["toward_target"] = *s.toward;
      e["toward_target_jpeg75"] = *s.toward_jpeg75;
      e["noise_floor_toward_target_jpeg75"] = *s.floor_toward_jpeg75;
      e["multiple_of_floor_toward_target_jpeg75"] = toward_multiple(s);
    }
    j["surrogates"].push_back(e);
  }
  return j;
}

}  // namespace cloak
