// What a protection achieved, measured with the real codecs rather than assumed.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloak/engine/codecs.h"
#include "cloak/engine/protect.h"

namespace cloak {

struct SurrogateShift {
  std::string name, sha256;
  // ||E(x') - E(x)|| / ||E(x)||, after JPEG q75 and, in a full report, also directly and after a
  // 50% resize (each transform applied to both images, so its own shift is not counted).
  double shift_jpeg75 = 0;
  std::optional<double> shift, shift_resize50;
  // Targeted modes, in a full report: how far the latent moved toward the target latent, as the
  // share of the way there along its direction (toward_target below), as saved and after JPEG q75
  // (both images and the target through it), and the noise copy's after JPEG q75 (near 0, as noise
  // has no direction, though it can drift toward a target richer in texture).
  std::optional<double> toward, toward_jpeg75, floor_toward_jpeg75;
  // The floor: the same shifts for a noise copy of the original as visible as the protected copy
  // (noise_floor.h), through the same steps. What noise gets is not protection.
  double floor_jpeg75 = 0;
  std::optional<double> floor, floor_resize50;
};

// A summary is what `cloak protect` prints (quality and the shift after JPEG q75, which `verify`
// judges by): it costs two encoder passes a surrogate where the full report costs four and a half.
enum class ReportDetail { Summary, Full };

struct ProtectionReport {
  std::vector<SurrogateShift> surrogates;
  double linf_codes = 0, psnr = 0, ssim = 0;  // at full size
  Visibility visibility;                      // Butteraugli, at full size
  // In a full report: no more visible than a JPEG at this quality (nothing: more visible than q10).
  std::optional<int> jpeg_equivalent;
  int64_t measured_height = 0, measured_width = 0;  // the size the shifts were measured at
  double floor_norm3 = 0;  // the noise copy's Butteraugli 3-norm (the protected copy's within 3%)
};

// Measures protected against original (both (1,C,H,W) in [0,1]). `objective` is the one the run
// optimised (ProtectOutput::objective, or make_objective for a copy protected elsewhere);
// `settings` gives poison's target. JPEG q75 and the 0.5x area resize are OpenCV's. Images
// optimised coarse to fine are measured as a trainer sees them: both resized (area, 8-bit) to the
// training scale first, the scale their protection was made for; quality is always measured at full
// size. `mask` (1,1,H,W, optional): where the protection could change the image (an alpha mask);
// the noise floor's copy gets its noise there and wherever `protected_` changed the image all the
// same (floor_mask in noise_floor.h).
ProtectionReport measure_protection(const std::vector<LoadedModel>& encoders,
                                    const torch::Tensor& original, const torch::Tensor& protected_,
                                    int bit_depth, const ProtectSettings& settings,
                                    const Objective& objective, const torch::Tensor& mask = {});
// The same for a run of `protect` on `original`, with the quality and visibility its fit measured
// (and its mask).
ProtectionReport measure_protection(const std::vector<LoadedModel>& encoders,
                                    const torch::Tensor& original, const ProtectOutput& run,
                                    int bit_depth, const ProtectSettings& settings,
                                    ReportDetail detail = ReportDetail::Full);

nlohmann::json to_json(const ProtectionReport& r);

// "no more visible than a JPEG q92", for people.
std::string describe_jpeg_equivalent(const std::optional<int>& quality);

// ||z - z0|| / ||z0||: the relative latent shift every report states.
double relative_shift(const torch::Tensor& z, const torch::Tensor& z0);

// <z - z0, zt - z0> / ||zt - z0||^2: the shift from z0 projected onto the direction to the target
// zt, as a share of the way there (1: at the target's distance along it, 0: none of the way, or
// only sideways).
double toward_target(const torch::Tensor& z, const torch::Tensor& z0, const torch::Tensor& zt);

// How far above the floor a targeted run's move toward its target after JPEG q75 is (`s` from a
// full report of cloak or poison): over the size of the noise copy's, which may fall either side
// of 0.
double toward_multiple(const SurrogateShift& s);

// What `verify`, `protect` and `batch` judge by: after JPEG q75, the mean over the surrogates of
// the shift and of the noise copy's, and how many times the floor the shift is.
struct Verdict {
  double shift = 0, floor = 0, multiple = 0;
  // shift >= the strength's min_shift_jpeg75 and multiple >= its min_floor_multiple
  bool protected_ = false;
};
Verdict judge(const ProtectionReport& r, Strength strength);
// The same rule for any step's mean shift and mean floor (the audit's).
Verdict judge(double shift, double floor, Strength strength);
nlohmann::json to_json(const Verdict& v, Strength strength);
// "protected: after JPEG q75 the latent shift 0.270 is 1.3x what noise as visible keeps (0.210);
// medium asks for 0.05 and 1.2x", for people.
std::string describe(const Verdict& v, Strength strength);

}  // namespace cloak
