#include "cloak/engine/protect.h"
#include "cloak/core/pixel.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>

#include "cloak/core/error.h"
#include "cloak/engine/budget.h"
#include "cloak/engine/butteraugli.h"
#include "cloak/engine/butteraugli_model.h"
#include "cloak/engine/cancel.h"
#include "cloak/engine/codecs.h"
#include "cloak/engine/decoys.h"
#include "cloak/engine/eot.h"
#include "cloak/engine/metrics.h"
#include "cloak/engine/precision.h"
#include "cloak/engine/vision.h"

namespace cloak {

namespace F = torch::nn::functional;

namespace {
// In this share of the steps the encoders see the window smaller, at a random scale down to
// kSmallestView but never below kSmallestViewSide pixels.
constexpr double kScaledViewShare = 0.5;
constexpr double kSmallestView = 0.5;
constexpr double kSmallestViewSide = 128;
// Coarse to fine: images over kCoarseAbove times ProtectSettings::training_pixels are optimised at
// that scale with the preset's sweeps, then refined at native size with kNativeSweeps sweeps whose
// steps start at kRefineStep of the local budget (bench/RESULTS.md, speed).
constexpr double kCoarseAbove = 1.25;
constexpr int kNativeSweeps = 2;
constexpr double kRefineStep = 0.15;
// Progress counts work in units of one full-size window pixel's work in a step (EOT transform,
// resize, their gradient). A step costs kStepWork, plus kEncoderPassWork per pixel of the view the
// encoders see, plus its window's pixels; a pass over the whole image (each sweep's projection)
// costs kImagePass per pixel, the texture budget kBudgetPasses and a quality check (SSIM and PSNR
// of the whole image) kQualityCheckPasses and a Butteraugli distance kButteraugliPasses such
// passes. Fitted to the time of every step and pass
// at 512 px, 3072x2304 and 4096 px (bench/RESULTS.md, speed).
constexpr double kStepWork = 250000;
constexpr double kEncoderPassWork = 15;
constexpr double kVisibilityPassWork = 12;  // per pixel of the square the visibility model judges
constexpr double kImagePass = 0.22;
constexpr double kBudgetPasses = 3;
constexpr double kQualityCheckPasses = 6;
constexpr double kButteraugliPasses = 20;
// Steps follow the gradient's magnitude as well as its sign, so pixels that move the latent most
// change most, where a sign step spends as much on pixels that barely move it (and was no better
// at equal Butteraugli: bench/RESULTS.md). Each window's gradient is scaled to unit RMS and
// clipped at kStepClip.
constexpr double kStepClip = 3;
// Steps favour chroma over luma kChromaWeight to 1 (budget.h, favour_chroma): the same shift costs
// less visibility in colour than in lightness, and the final fit to Butteraugli then keeps more of
// it (0.27 -> 0.44 of the shift after JPEG q75 per unit of Butteraugli 3-norm, taef2 -> taesana;
// bench/RESULTS.md, ablation). With Butteraugli's own gradient in the loop 4 to 1 keeps more than
// 12 to 1 did, with less colour change (S-CIELAB) that Butteraugli weighs lightly and a person
// sees (bench/RESULTS.md, "Colour"). A picture optimised coarse to fine favours chroma
// kCoarseChromaWeight to 1: the change made at the training scale is judged at full size, where
// lightness that the enlarging made smooth shows and the fit takes it back, colour much less (at
// 4 to 1 the training-scale shift left fell by 40%).
constexpr double kChromaWeight = 4;
constexpr double kCoarseChromaWeight = 12;
// Every kVisibilityEvery-th step also sees how visible the window's change is, by a libtorch port
// of Butteraugli (engine/butteraugli_model.h), and where it shows more than the fit will allow (the
// level below) adds that model's gradient, scaled to the encoders' (unit RMS, times
// kVisibilityWeight and the share it is over): the change moves to where it does not show, so the
// fit keeps more of it (bench/RESULTS.md, ablation). A window larger than kVisibilityTile a side is
// judged on a random square of that side (a coarse pass's windows are large at full size). (Five
// times the texture budget with the model kept twice the shift, within the JPEG's Butteraugli, but
// by colour fringes and blotches Butteraugli misses and a person sees: not kept.)
constexpr double kVisibilityWeight = 3;
constexpr int kVisibilityEvery = 3;
constexpr int64_t kVisibilityTile = 256;
// Steps decay (cosine, per phase) from kFirstStep to kLastStep of the local budget.
constexpr double kFirstStep = 0.3;
constexpr double kLastStep = 0.05;
// Visibility, measured by Butteraugli (engine/butteraugli.h), decides what is saved, region by
// region: around each pixel the change may be as visible as the strength's JPEG is there in
// texture, and only kInvisible (well below 1, the threshold of visibility) in flat colour
// (budget.h, visibility_level); and over the whole image no more visible than the JPEG in max and
// 3-norm. The optimiser works inside the texture budget's L-infinity bound; the finished
// perturbation is then scaled region by region toward that level kShapeTries times (each time by
// kFitLow to kFitHigh, within the same bound), then as a whole by what the JPEG's max and 3-norm
// leave (kFitMargin below them, so that rounding cannot cross them); the try that meets the JPEG
// with the largest 3-norm is kept, and should none meet it, the last is shrunk by kFitShrink at a
// time until it does. (Reshaping the bound by visibility during the run instead halved the shift
// left after JPEG q75: bench/RESULTS.md, ablation.) With InvisibleAt::TrainingSize, a picture
// optimised coarse to fine is judged on its copy shrunk to the training scale as a trainer does
// (engine/codecs.h), and each try's regional gain is enlarged back to full size.
constexpr double kInvisible = 0.5;
constexpr int kShapeTries = 3;
constexpr double kFitLow = 0.1, kFitHigh = 2;
constexpr double kFitMargin = 0.97;
constexpr double kFitShrink = 0.85;
constexpr int kMaxFitTries = 40;  // 0.85^36 of the change: well under one code value
}  // namespace

bool coarse_to_fine(int64_t h, int64_t w, const ProtectSettings& settings) {
  return settings.training_pixels > 0 &&
         static_cast<double>(h * w) > kCoarseAbove * settings.training_pixels;
}

bool judged_at_training_size(int64_t h, int64_t w, const ProtectSettings& settings) {
  return settings.invisible_at == InvisibleAt::TrainingSize && coarse_to_fine(h, w, settings);
}

std::pair<int64_t, int64_t> training_size(int64_t h, int64_t w, const ProtectSettings& settings) {
  const double f = std::sqrt(settings.training_pixels / static_cast<double>(h * w));
  return {std::max<int64_t>(1, std::lround(h * f)), std::max<int64_t>(1, std::lround(w * f))};
}

int max_downscale(const std::vector<LoadedModel>& encoders) {
  int d = 8;
  for (const auto& e : encoders) d = std::max(d, e.spec->downscale);
  return d;
}

namespace {

torch::Tensor to_encoder_input(const torch::Tensor& x, int multiple) {
  auto rgb = as_rgb(x);
  const auto ph = (multiple - x.size(2) % multiple) % multiple;
  const auto pw = (multiple - x.size(3) % multiple) % multiple;
  if (ph || pw) rgb = F::pad(rgb, F::PadFuncOptions({0, pw, 0, ph}).mode(torch::kReplicate));
  return rgb.contiguous(at::MemoryFormat::ChannelsLast);
}

struct Window {
  int64_t y, x, h, w;
};

// One sweep's windows: a grid that covers the image, each window jittered by up to a quarter
// tile (in steps of 8 px, the encoders' stride) so that seams move between sweeps.
std::vector<Window> sweep_windows(int64_t H, int64_t W, int64_t tile, std::mt19937_64& rng) {
  const int64_t th = std::min(tile, H), tw = std::min(tile, W);
  const int64_t ny = (H + tile - 1) / tile, nx = (W + tile - 1) / tile;
  std::uniform_int_distribution<int64_t> jitter(-tile / 32, tile / 32);
  auto place = [&](int64_t i, int64_t n, int64_t size, int64_t span) {
    int64_t p = n == 1 ? 0 : i * (size - span) / (n - 1);
    return std::clamp<int64_t>(p + 8 * jitter(rng), 0, size - span);
  };
  std::vector<Window> out;
  for (int64_t i = 0; i < ny; ++i)
    for (int64_t j = 0; j < nx; ++j)
      out.push_back({place(i, ny, H, th), place(j, nx, W, tw), th, tw});
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

// One surrogate pass, in the precision cloak/precision.h chose; the latent comes back float32.
torch::Tensor forward(const LoadedModel& encoder, const torch::Tensor& x) {
  SurrogatePrecision precision;
  return encoder.net->forward(x).to(torch::kFloat32);
}

torch::Tensor crop(const torch::Tensor& t, const Window& w) {
  return t.slice(2, w.y, w.y + w.h).slice(3, w.x, w.x + w.w);
}

}  // namespace

std::unique_ptr<Objective> make_objective(const std::vector<LoadedModel>& encoders,
                                          const ProtectSettings& s) {
  const int multiple = max_downscale(encoders);
  switch (s.mode) {
    case Mode::Guard:
      return make_guard_objective();
    case Mode::Poison:
      if (!s.target.defined())
        throw Error(ErrorKind::Usage, "poison mode needs a target image (--target)");
      return make_poison_objective();
    case Mode::Cloak: {
      torch::NoGradGuard no_grad;
      auto decoy =
          s.target.defined() ? fit_target(s.target, 256, 256, 3) : make_decoy(s.decoy, 256);
      std::vector<std::pair<torch::Tensor, torch::Tensor>> stats;
      for (const auto& e : encoders) {
        auto z = forward(e, to_encoder_input(decoy.to(s.device), multiple));
        stats.emplace_back(z.mean({2, 3}, true), z.std({2, 3}, false, true));
      }
      return make_cloak_objective(std::move(stats));
    }
  }
  throw Error(ErrorKind::Usage, "unknown mode");
}

torch::Tensor encode(const LoadedModel& encoder, const torch::Tensor& image, int64_t tile) {
  const int64_t ds = encoder.spec->downscale;
  auto x = to_encoder_input(image.to(encoder.net->parameters()[0].device()), static_cast<int>(ds));
  const int64_t H = x.size(2), W = x.size(3), halo = 64;
  if (H <= tile + 2 * halo && W <= tile + 2 * halo) return forward(encoder, x);
  // Tiles with a halo each side, stitched in latent space: bounded memory at any size. Tiles are
  // large because taef2's GroupNorm sees whole-tile statistics: the smaller the tile, the further
  // its latent drifts from a whole-image pass.
  torch::Tensor out;
  for (int64_t y = 0; y < H; y += tile)
    for (int64_t x0 = 0; x0 < W; x0 += tile) {
      const int64_t y0 = std::max<int64_t>(0, y - halo), y1 = std::min(H, y + tile + halo);
      const int64_t xa = std::max<int64_t>(0, x0 - halo), xb = std::min(W, x0 + tile + halo);
      auto z = forward(
          encoder, x.slice(2, y0, y1).slice(3, xa, xb).contiguous(at::MemoryFormat::ChannelsLast));
      if (!out.defined()) out = torch::empty({1, z.size(1), H / ds, W / ds}, z.options());
      const int64_t ry = (y - y0) / ds, rx = (x0 - xa) / ds;
      const int64_t ny = (std::min(H, y + tile) - y) / ds, nx = (std::min(W, x0 + tile) - x0) / ds;
      out.slice(2, y / ds, y / ds + ny)
          .slice(3, x0 / ds, x0 / ds + nx)
          .copy_(z.slice(2, ry, ry + ny).slice(3, rx, rx + nx));
    }
  return out;
}

torch::Tensor fit_target(const torch::Tensor& target, int64_t h, int64_t w, int64_t channels) {
  const double scale =
      std::max(static_cast<double>(h) / target.size(2), static_cast<double>(w) / target.size(3));
  const auto rh = std::max<int64_t>(h, std::lround(target.size(2) * scale));
  const auto rw = std::max<int64_t>(w, std::lround(target.size(3) * scale));
  auto r = F::interpolate(target, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{rh, rw})
                                      .mode(torch::kBilinear)
                                      .align_corners(false));
  r = r.slice(2, (rh - h) / 2, (rh - h) / 2 + h).slice(3, (rw - w) / 2, (rw - w) / 2 + w);
  if (channels == 1 && r.size(1) == 3)
    r = kLumaR * r.slice(1, 0, 1) + kLumaG * r.slice(1, 1, 2) + kLumaB * r.slice(1, 2, 3);
  return r.clamp(0, 1).contiguous();
}

namespace {

// The coarse-to-fine schedule: an image larger than the training scale is first optimised as the
// encoders see it after a trainer's downscale (each window seen at that scale, the gradient carried
// back to full size through the same area resize), then refined at native size.
struct Phase {
  double scale;  // the encoders see windows of tile / scale pixels at this scale
  int sweeps;
};
std::vector<Phase> plan_phases(int64_t H, int64_t W, const ProtectSettings& settings) {
  const bool coarse = coarse_to_fine(H, W, settings);
  std::vector<Phase> phases;
  if (coarse)
    phases.push_back({std::sqrt(settings.training_pixels / static_cast<double>(H * W)),
                      preset_sweeps(settings.preset)});
  phases.push_back({1.0, coarse ? kNativeSweeps : preset_sweeps(settings.preset)});
  return phases;
}

// The share of the run done so far, reported to `progress` (units above): what is done over what
// is done plus what is still planned. Work that turns out other than planned (a step's random
// view, a budget widening or rounding try that was not planned) changes the total as it is done,
// so the share never goes back and ends at exactly 1.
class WorkMeter {
 public:
  WorkMeter(const ProgressFn& progress, double image_pixels)
      : progress_(progress), image_pass_(kImagePass * image_pixels) {}
  double image_passes(double n) const { return n * image_pass_; }
  void plan(double work) { planned_ += work; }
  void done(double work, double planned) {
    done_ += work;
    planned_ -= planned;
    // Under half a pixel's work left (rounding of the sums) is nothing left.
    const double share = planned_ < 0.5 ? 1.0 : done_ / (done_ + planned_);
    if (progress_ && !progress_(share)) throw Error(ErrorKind::Cancelled, "cancelled");
  }
  void done(double work) { done(work, work); }

 private:
  const ProgressFn& progress_;
  double image_pass_, done_ = 0, planned_ = 0;  // planned_: what is planned and not yet done
};

// The smallest random view scale of a window whose shorter side the encoders see at `seen` px.
double smallest_view(double seen) {
  return std::min(1.0, std::max(kSmallestView, kSmallestViewSide / seen));
}

// A step's work: the encoder passes on its view (`view_pixels` as the encoders see it), the pixel
// work on its full-size window, and the visibility model on the square it judges, if `judged`.
double step_work(const Window& w, double view_pixels, double level_scale, double judged) {
  const auto side = [&](int64_t n) {
    return std::min<double>(kVisibilityTile, std::max<double>(8, std::round(n * level_scale)));
  };
  return kStepWork + kEncoderPassWork * view_pixels + static_cast<double>(w.h * w.w) +
         judged * kVisibilityPassWork * side(w.h) * side(w.w);
}

// Its expectation: the view is the window at the phase's scale, in kScaledViewShare of the steps
// smaller by a random scale s = smallest^u, u uniform, whose mean area is
// (smallest^2 - 1) / (2 ln smallest).
double expected_step_work(const Window& w, double phase_scale, double level_scale) {
  const double m = smallest_view(phase_scale * static_cast<double>(std::min(w.h, w.w)));
  const double scaled_area = m < 1 ? (m * m - 1) / (2 * std::log(m)) : 1.0;
  const double area = 1 - kScaledViewShare + kScaledViewShare * scaled_area;
  return step_work(w, area * phase_scale * phase_scale * static_cast<double>(w.h * w.w),
                   level_scale, 1.0 / kVisibilityEvery);
}

// Every sweep's windows, in the order they are optimised, planned in the meter.
std::vector<std::vector<Window>> plan_sweeps(int64_t H, int64_t W, const std::vector<Phase>& phases,
                                             int tile, double level_scale, std::mt19937_64& rng,
                                             WorkMeter& meter) {
  std::vector<std::vector<Window>> sweeps;
  for (const Phase& p : phases) {
    const int64_t side = std::lround(tile / p.scale / 8) * 8;
    for (int s = 0; s < p.sweeps; ++s) {
      sweeps.push_back(sweep_windows(H, W, side, rng));
      for (const Window& w : sweeps.back()) meter.plan(expected_step_work(w, p.scale, level_scale));
      meter.plan(meter.image_passes(1));  // the sweep's projection
    }
  }
  return sweeps;
}

// What every step of one run reads.
struct Problem {
  const std::vector<LoadedModel>& encoders;
  const Objective& objective;
  torch::Tensor x0, target;  // the image, and poison's target fitted to it (else undefined)
  int multiple, bit_depth;
  // The visibility level each pixel's change may reach (the fit's, below), and the scale at which
  // it is judged: 1, or the training scale's (InvisibleAt::TrainingSize).
  torch::Tensor level;
  double level_scale;
  double chroma_weight;  // kChromaWeight, or kCoarseChromaWeight
};

// Where the window's change shows more than the level allows, the gradient that takes it back,
// by Butteraugli itself (engine/butteraugli_model.h) on the window as it is judged (at its own
// size, or shrunk to the training scale), and how far over the level it is: the root mean square of
// the excess over the mean level (0: nowhere over, and no gradient).
std::pair<torch::Tensor, double> visibility_gradient(const Problem& pb, const Window& win,
                                                     const torch::Tensor& x0w,
                                                     const torch::Tensor& d, std::mt19937_64& rng) {
  auto reference = x0w, changed = (x0w + d).clamp(0, 1);
  torch::Tensor level;
  if (pb.level_scale < 1) {
    const double f = pb.level_scale;
    auto shrink = [&](const torch::Tensor& t) {
      return F::interpolate(
          t, F::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{std::max<int64_t>(8, std::lround(win.h * f)),
                                            std::max<int64_t>(8, std::lround(win.w * f))})
                 .mode(torch::kArea));
    };
    reference = shrink(reference);
    changed = shrink(changed);
    const int64_t lh = pb.level.size(2), lw = pb.level.size(3);
    const int64_t y0 = std::min<int64_t>(lh - 1, std::lround(win.y * f)),
                  x0 = std::min<int64_t>(lw - 1, std::lround(win.x * f));
    const int64_t y1 = std::clamp<int64_t>(std::lround((win.y + win.h) * f), y0 + 1, lh),
                  x1 = std::clamp<int64_t>(std::lround((win.x + win.w) * f), x0 + 1, lw);
    level = F::interpolate(pb.level.slice(2, y0, y1).slice(3, x0, x1),
                           F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{reference.size(2), reference.size(3)})
                               .mode(torch::kBilinear)
                               .align_corners(false));
  } else {
    level = crop(pb.level, win);
  }
  for (int dim : {2, 3}) {
    const int64_t n = reference.size(dim), side = std::min(n, kVisibilityTile);
    const int64_t at = std::uniform_int_distribution<int64_t>(0, n - side)(rng);
    reference = reference.narrow(dim, at, side);
    changed = changed.narrow(dim, at, side);
    level = level.narrow(dim, at, side);
  }
  const auto excess = (butteraugli_model(reference, changed) - level[0][0]).clamp_min(0);
  const double violation = (excess.square().mean().sqrt() / level.mean()).item<double>();
  if (violation <= 0) return {torch::Tensor(), 0.0};
  return {torch::autograd::grad({excess.square().sum()}, {d})[0], violation};
}

// One gradient step on `delta` inside window `win`, clipped to the local budget `eps_map`.
// The encoders see the window through a random EOT transform; in a share of the steps also at a
// random scale between kSmallestView and 1 (never below kSmallestViewSide pixels), as trainers and
// previews downscale: this carries the perturbation into coarser structure, which transfers to
// other encoders and survives resizing and blur; the other steps keep it strong at full size
// (bench/RESULTS.md, ablation). If `judge`, the step also takes back where the change shows more
// than the level allows (visibility_gradient).
// Returns the pixels of the view the encoders saw (before padding to their stride).
double step_window(const Problem& pb, const Window& win, double phase_scale, double step,
                   bool judge, const torch::Tensor& eps_map, torch::Tensor& delta,
                   std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const Transform t = sample_transform(rng);
  const double seen = phase_scale * static_cast<double>(std::min(win.h, win.w));
  const double smallest = smallest_view(seen);
  const double scale =
      phase_scale * (unit(rng) < kScaledViewShare ? std::exp(std::log(smallest) * unit(rng)) : 1.0);
  auto view = [&](const torch::Tensor& in) {
    auto v = apply_transform(t, in);
    if (scale < 1) {
      auto size =
          std::vector<int64_t>{std::max<int64_t>(pb.multiple, std::lround(v.size(2) * scale)),
                               std::max<int64_t>(pb.multiple, std::lround(v.size(3) * scale))};
      v = F::interpolate(v, F::InterpolateFuncOptions().size(size).mode(torch::kArea));
    }
    return to_encoder_input(v, pb.multiple);
  };
  auto x0w = crop(pb.x0, win);
  auto d = crop(delta, win).clone().requires_grad_(true);
  auto x = quantize_ste((x0w + d).clamp(0, 1), pb.bit_depth);
  auto xin = view(x);
  torch::Tensor ref_in, target_in;
  {
    torch::NoGradGuard no_grad;
    ref_in = view(x0w);
    if (pb.target.defined()) target_in = view(crop(pb.target, win));
  }
  torch::Tensor loss = torch::zeros({}, pb.x0.options());
  for (std::size_t e = 0; e < pb.encoders.size(); ++e) {
    torch::Tensor z_orig, z_target;
    {
      torch::NoGradGuard no_grad;
      z_orig = forward(pb.encoders[e], ref_in);
      z_target = pb.objective.target(
          z_orig, target_in.defined() ? forward(pb.encoders[e], target_in) : torch::Tensor(), e);
    }
    loss = loss + pb.objective.loss(forward(pb.encoders[e], xin), z_orig, z_target);
  }
  auto grad = torch::autograd::grad({loss}, {d})[0];
  const auto [visible, violation] =
      judge ? visibility_gradient(pb, win, x0w, d, rng) : std::pair<torch::Tensor, double>{};
  torch::NoGradGuard no_grad;
  grad = favour_chroma(grad, pb.chroma_weight);
  auto ew = crop(eps_map, win);
  auto dw = crop(delta, win);
  auto direction = grad / (grad.square().mean().sqrt() + 1e-12);
  if (violation > 0)
    direction += kVisibilityWeight * std::min(1.0, violation) * visible /
                 (visible.square().mean().sqrt() + 1e-12);
  dw.sub_(step * ew * direction.clamp(-kStepClip, kStepClip));
  dw.copy_(torch::max(torch::min(dw, ew), -ew));
  return scale * scale * static_cast<double>(win.h * win.w);
}

// The rounded image that `delta` gives.
torch::Tensor rounded(const torch::Tensor& x0, const torch::Tensor& delta, double q) {
  return ((x0 + delta).clamp(0, 1) * q).round() / q;
}

// What is saved is the rounded image, no more visible than the goal (the strength's JPEG) region
// by region and as a whole: kShapeTries tries scale the perturbation region by region toward the
// level (budget.h, visibility_gain), then one scales it as a whole by what the max and 3-norm
// leave; of the shaped tries that meet the goal, the one with the largest 3-norm is kept, and
// should none meet it, the last is shrunk by kFitShrink at a time until it does (at most
// kMaxFitTries tries in all; then nothing is added). The run plans
// kPlannedFitTries tries; one more is planned before the one that asks for it counts as done, so
// the share reaches 1 only with the last.
constexpr int kPlannedFitTries = kShapeTries + 2;  // the shaping, the whole, its measurement
using Judged = std::function<torch::Tensor(const torch::Tensor&)>;
void fit_to_visibility(const torch::Tensor& x0, const torch::Tensor& delta,
                       const torch::Tensor& eps_map, const Judged& judged,
                       const torch::Tensor& x0_judged, const Visibility& goal,
                       const torch::Tensor& level, double q, WorkMeter& meter,
                       ProtectOutput& result) {
  torch::NoGradGuard no_grad;
  const double work = meter.image_passes(kButteraugliPasses);
  torch::Tensor candidate = delta;
  double best = -1;
  for (int tries = 0;; ++tries) {
    auto image = rounded(x0, candidate, q);
    const auto v = butteraugli(x0_judged, judged(image), true);
    const bool meets = v.max <= goal.max && v.norm3 <= goal.norm3;
    if (tries >= kShapeTries && meets && v.norm3 > best) {
      best = v.norm3;
      result.image = image;
      result.visibility = v;
    }
    torch::Tensor next;
    if (tries < kShapeTries) {
      auto gain = visibility_gain(v.distmap.to(x0.device()), level, kFitLow, kFitHigh);
      if (gain.size(2) != x0.size(2))
        gain = F::interpolate(gain, F::InterpolateFuncOptions()
                                        .size(std::vector<int64_t>{x0.size(2), x0.size(3)})
                                        .mode(torch::kBilinear)
                                        .align_corners(false));
      next = torch::max(torch::min(candidate * gain, eps_map), -eps_map);
    } else if (tries == kShapeTries && !meets) {
      next = candidate *
             std::max(kFitLow, kFitMargin * std::min(goal.max / v.max, goal.norm3 / v.norm3));
    } else if (best < 0 && tries < kMaxFitTries) {
      next = candidate * kFitShrink;  // meets the goal once small enough
    } else if (best < 0) {
      // Nothing added at all: what rounding the input alone gives (exact for 8- and 16-bit input).
      result.image = rounded(x0, torch::zeros_like(x0), q);
      result.visibility = butteraugli(x0_judged, judged(result.image), true);
    }
    // A try beyond the planned ones is planned before this one counts as done.
    if (next.defined() && tries + 1 >= kPlannedFitTries) meter.plan(work);
    meter.done(work);
    if (!next.defined()) {
      if (tries + 1 < kPlannedFitTries) meter.done(0, work * (kPlannedFitTries - tries - 1));
      break;
    }
    candidate = next;
  }
  result.psnr = psnr(x0, result.image);
  result.ssim = ssim(x0, result.image);
  result.image = result.image.cpu();
}

}  // namespace

ProtectOutput protect(const std::vector<LoadedModel>& encoders, const ProtectInput& input,
                      const ProtectSettings& settings, const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  if (encoders.empty()) throw Error(ErrorKind::Model, "no surrogate encoder is available");
  const auto& dev = settings.device;
  const auto x0 = input.image.to(dev, torch::kFloat32).contiguous();
  const int64_t H = x0.size(2), W = x0.size(3);
  const StrengthBudget budget = strength_budget(settings.strength);
  const torch::Tensor mask = input.mask.defined() ? input.mask.to(dev) : torch::Tensor();
  stop_if_cancelled();  // each step before the first progress takes seconds on a large image
  const torch::Tensor masking = texture_masking(x0);
  stop_if_cancelled();
  const auto eps_map =
      perceptual_budget(masking, mask, budget.eps_codes / kMaxCode8, input.bit_depth);
  stop_if_cancelled();
  const double q = max_code(input.bit_depth);
  // What visibility is judged on: the image, or its copy at the training scale.
  const bool at_training_size = judged_at_training_size(H, W, settings);
  Judged judged = [](const torch::Tensor& t) { return t; };
  if (at_training_size)
    judged = [size = training_size(H, W, settings), &dev](const torch::Tensor& t) {
      return opencv_resize_to(t, size.first, size.second).to(dev);
    };
  std::shared_ptr<const Objective> objective = make_objective(encoders, settings);
  stop_if_cancelled();
  torch::Tensor target;
  if (settings.mode == Mode::Poison) target = fit_target(settings.target.to(dev), H, W, x0.size(1));

  std::mt19937_64 rng(settings.seed);
  auto gen = at::detail::createCPUGenerator(settings.seed);
  auto delta = ((at::rand(x0.sizes(), gen, torch::kFloat32).to(dev) * 2 - 1) * 0.5 * eps_map);
  project_to_budget(delta, x0, eps_map);

  WorkMeter meter(progress, static_cast<double>(H * W));
  // Before: the texture budget and the yardstick (a JPEG and its distance); after: the planned fit
  // tries and the quality figures.
  // Judged at the training size, the full-size visibility and its JPEG's are measured at the end.
  const int full_size_measures = at_training_size ? 2 : 0;
  meter.plan(meter.image_passes(kBudgetPasses +
                                (1 + kPlannedFitTries + full_size_measures) * kButteraugliPasses +
                                kQualityCheckPasses));
  const std::vector<Phase> phases = plan_phases(H, W, settings);
  const double level_scale =
      at_training_size ? static_cast<double>(training_size(H, W, settings).first) / H : 1.0;
  const auto plan = plan_sweeps(H, W, phases, settings.tile, level_scale, rng, meter);
  meter.done(meter.image_passes(kBudgetPasses));
  const auto x0_judged = judged(x0);
  Visibility goal = jpeg_visibility(x0_judged, budget.jpeg_quality, true);
  const torch::Tensor level = visibility_level(
      at_training_size ? texture_masking(x0_judged) : masking, goal.distmap, kInvisible);
  goal.distmap = torch::Tensor();
  meter.done(meter.image_passes(kButteraugliPasses));
  const Problem problem{encoders,
                        *objective,
                        x0,
                        target,
                        max_downscale(encoders),
                        input.bit_depth,
                        level,
                        level_scale,
                        coarse_to_fine(H, W, settings) ? kCoarseChromaWeight : kChromaWeight};

  std::size_t steps = 0, sweep = 0;
  for (const Phase& phase : phases)
    for (int s = 0; s < phase.sweeps; ++s, ++sweep) {
      // Cosine step decay from kFirstStep to kLastStep of the local budget (the native refinement
      // of a coarse run starts from kRefineStep).
      const double top = &phase == &phases.front() ? kFirstStep : kRefineStep;
      const double step = kLastStep + (top - kLastStep) * 0.5 *
                                          (1 + std::cos(M_PI * s / std::max(1, phase.sweeps - 1)));
      for (const Window& win : plan[sweep]) {
        const bool judge = steps % kVisibilityEvery == 0;
        const double view =
            step_window(problem, win, phase.scale, step, judge, eps_map, delta, rng);
        meter.done(step_work(win, view, level_scale, judge ? 1 : 0),
                   expected_step_work(win, phase.scale, level_scale));
        ++steps;
      }
      project_to_budget(delta, x0, eps_map);
      meter.done(meter.image_passes(1));
    }

  ProtectOutput result;
  result.goal = goal;
  fit_to_visibility(x0, delta, eps_map, judged, x0_judged, goal, level, q, meter, result);
  if (at_training_size) {  // what the output shows at full size
    torch::NoGradGuard no_grad;
    result.visibility = butteraugli(x0, result.image.to(dev), true);
    result.goal = jpeg_visibility(x0, budget.jpeg_quality);
    meter.done(meter.image_passes(full_size_measures * kButteraugliPasses));
  }
  meter.done(meter.image_passes(kQualityCheckPasses));
  result.steps = static_cast<int>(steps);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.objective = std::move(objective);
  result.mask = input.mask;
  return result;
}

}  // namespace cloak
