#include "cloak/engine.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "cloak/budget.h"
#include "cloak/decoys.h"
#include "cloak/eot.h"
#include "cloak/error.h"
#include "cloak/metrics.h"

namespace cloak {

namespace F = torch::nn::functional;

namespace {
// In this share of the steps the encoders see the window smaller, at a random scale down to
// kSmallestView but never below kSmallestViewSide pixels.
constexpr double kScaledViewShare = 0.5;
constexpr double kSmallestView = 0.5;
constexpr double kSmallestViewSide = 128;
// How far the strength's texture bound may widen to bring an image down to its quality floors.
constexpr double kMaxBudgetGain = 2.0;
}  // namespace

StrengthBudget strength_budget(Strength s) {
  switch (s) {
    case Strength::Low:
      return {4, 40.0, 0.985, 0.10};
    case Strength::Medium:
      return {8, 36.0, 0.97, 0.15};
    case Strength::High:
      return {12, 32.0, 0.93, 0.20};
  }
  return {8, 36.0, 0.97, 0.15};
}

int preset_sweeps(Preset p) {
  switch (p) {
    case Preset::Fast:
      return 8;
    case Preset::Balanced:
      return 16;
    case Preset::Max:
      return 32;
  }
  return 16;  // unreachable: every preset is listed
}

std::string to_string(Mode m) {
  return m == Mode::Guard ? "guard" : m == Mode::Cloak ? "cloak" : "poison";
}
std::string to_string(Strength s) {
  return s == Strength::Low ? "low" : s == Strength::Medium ? "medium" : "high";
}
std::string to_string(Preset p) {
  return p == Preset::Fast ? "fast" : p == Preset::Balanced ? "balanced" : "max";
}

int max_downscale(const std::vector<LoadedModel>& encoders) {
  int d = 8;
  for (const auto& e : encoders) d = std::max(d, e.spec->downscale);
  return d;
}

namespace {

torch::Tensor to_encoder_input(const torch::Tensor& x, int multiple) {
  auto rgb = x.size(1) == 1 ? x.expand({x.size(0), 3, x.size(2), x.size(3)}) : x;
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
        auto z = e.net->forward(to_encoder_input(decoy.to(s.device), multiple));
        stats.emplace_back(z.mean({2, 3}, true), z.std({2, 3}, false, true));
      }
      return make_cloak_objective(std::move(stats));
    }
  }
  throw Error(ErrorKind::Usage, "unknown mode");
}

torch::Tensor encode(const LoadedModel& encoder, const torch::Tensor& image, int64_t tile) {
  torch::NoGradGuard no_grad;
  const int64_t ds = encoder.spec->downscale;
  auto x = to_encoder_input(image.to(encoder.net->parameters()[0].device()), static_cast<int>(ds));
  const int64_t H = x.size(2), W = x.size(3), halo = 64;
  if (H <= tile + 2 * halo && W <= tile + 2 * halo) return encoder.net->forward(x);
  // Tiles with a halo each side, stitched in latent space: bounded memory at any size. Tiles are
  // large because taef2's GroupNorm sees whole-tile statistics: the smaller the tile, the further
  // its latent drifts from a whole-image pass.
  torch::Tensor out;
  for (int64_t y = 0; y < H; y += tile)
    for (int64_t x0 = 0; x0 < W; x0 += tile) {
      const int64_t y0 = std::max<int64_t>(0, y - halo), y1 = std::min(H, y + tile + halo);
      const int64_t xa = std::max<int64_t>(0, x0 - halo), xb = std::min(W, x0 + tile + halo);
      auto z = encoder.net->forward(
          x.slice(2, y0, y1).slice(3, xa, xb).contiguous(at::MemoryFormat::ChannelsLast));
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
    r = 0.299 * r.slice(1, 0, 1) + 0.587 * r.slice(1, 1, 2) + 0.114 * r.slice(1, 2, 3);
  return r.clamp(0, 1).contiguous();
}

ProtectOutput protect(const std::vector<LoadedModel>& encoders, const ProtectInput& input,
                      const ProtectSettings& settings, const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  if (encoders.empty()) throw Error(ErrorKind::Model, "no surrogate encoder is available");
  const auto& dev = settings.device;
  const int multiple = max_downscale(encoders);
  const auto x0 = input.image.to(dev, torch::kFloat32).contiguous();
  const int64_t H = x0.size(2), W = x0.size(3);
  const StrengthBudget budget = strength_budget(settings.strength);
  const torch::Tensor mask = input.mask.defined() ? input.mask.to(dev) : torch::Tensor();
  auto eps_map = perceptual_budget(x0, mask, budget.eps_codes / 255.0, input.bit_depth);
  // PSNR floor as an MSE cap, with a margin so that rounding cannot cross it.
  const double max_mse = std::pow(10.0, -(budget.min_psnr + 0.3) / 10.0);
  auto objective = make_objective(encoders, settings);
  torch::Tensor target;
  if (settings.mode == Mode::Poison) target = fit_target(settings.target.to(dev), H, W, x0.size(1));

  const double q = input.bit_depth == 16 ? 65535.0 : 255.0;
  std::mt19937_64 rng(settings.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto gen = at::detail::createCPUGenerator(settings.seed);
  auto delta = ((at::rand(x0.sizes(), gen, torch::kFloat32).to(dev) * 2 - 1) * 0.5 * eps_map);
  double budget_gain = 1.0;
  project_to_budget(delta, x0, eps_map, max_mse);

  const int sweeps = preset_sweeps(settings.preset);
  std::vector<std::vector<Window>> plan;
  for (int s = 0; s < sweeps; ++s) plan.push_back(sweep_windows(H, W, settings.tile, rng));
  const std::size_t total = plan.size() * plan[0].size();
  std::size_t done = 0;
  for (int s = 0; s < sweeps; ++s) {
    // Cosine step decay from 30% to 5% of the local budget.
    const double step = 0.05 + 0.25 * 0.5 * (1 + std::cos(M_PI * s / std::max(1, sweeps - 1)));
    for (const Window& win : plan[static_cast<std::size_t>(s)]) {
      const Transform t = sample_transform(rng);
      // In a share of the steps the encoders see the window at a random scale between
      // kSmallestView and 1 (never below kSmallestViewSide pixels), as trainers and previews
      // downscale: this carries the perturbation into coarser structure, which transfers to other
      // encoders and survives resizing and blur; the other steps keep it strong at full size
      // (bench/RESULTS.md, ablation).
      const double smallest = std::min(
          1.0,
          std::max(kSmallestView, kSmallestViewSide / static_cast<double>(std::min(win.h, win.w))));
      const double scale =
          unit(rng) < kScaledViewShare ? std::exp(std::log(smallest) * unit(rng)) : 1.0;
      auto view = [&](const torch::Tensor& in) {
        auto v = apply_transform(t, in);
        auto size =
            std::vector<int64_t>{std::max<int64_t>(multiple, std::lround(v.size(2) * scale)),
                                 std::max<int64_t>(multiple, std::lround(v.size(3) * scale))};
        return to_encoder_input(
            F::interpolate(v, F::InterpolateFuncOptions().size(size).mode(torch::kArea)), multiple);
      };
      auto x0w = crop(x0, win);
      auto d = crop(delta, win).clone().requires_grad_(true);
      auto x = quantize_ste((x0w + d).clamp(0, 1), input.bit_depth);
      auto xin = view(x);
      torch::Tensor ref_in, target_in;
      {
        torch::NoGradGuard no_grad;
        ref_in = view(x0w);
        if (target.defined()) target_in = view(crop(target, win));
      }
      torch::Tensor loss = torch::zeros({}, x0.options());
      for (std::size_t e = 0; e < encoders.size(); ++e) {
        torch::Tensor z_orig, z_target;
        {
          torch::NoGradGuard no_grad;
          z_orig = encoders[e].net->forward(ref_in);
          z_target = objective->target(
              z_orig, target_in.defined() ? encoders[e].net->forward(target_in) : torch::Tensor(),
              e);
        }
        loss = loss + objective->loss(encoders[e].net->forward(xin), z_orig, z_target);
      }
      auto grad = torch::autograd::grad({loss}, {d})[0];
      {
        torch::NoGradGuard no_grad;
        auto ew = crop(eps_map, win);
        auto dw = crop(delta, win);
        dw.sub_(step * ew * grad.sign());
        dw.copy_(torch::max(torch::min(dw, ew), -ew));
      }
      ++done;
      if (progress && !progress(static_cast<double>(done) / static_cast<double>(total)))
        throw Error(ErrorKind::Cancelled, "cancelled");
    }
    project_to_budget(delta, x0, eps_map, max_mse);
    // Aim at the floors: while the image would land well above them, widen the budget (texture
    // still decides where the change goes), by at most a quarter a sweep.
    if (s + 1 < sweeps && budget_gain < kMaxBudgetGain) {
      torch::NoGradGuard no_grad;
      const double mse = delta.square().mean().item<double>();
      if (mse > 0 && mse < 0.9 * max_mse &&
          ssim(x0, (x0 + delta).clamp(0, 1)) > budget.min_ssim + 0.005) {
        const double f = std::min({1.25, std::sqrt(max_mse / mse), kMaxBudgetGain / budget_gain});
        eps_map = (eps_map * f * q).floor() / q;
        budget_gain *= f;
      }
    }
  }

  // What is saved is the rounded image: shrink the perturbation until it meets every floor.
  torch::NoGradGuard no_grad;
  torch::Tensor out;
  for (int tries = 0;; ++tries) {
    out = ((x0 + delta).clamp(0, 1) * q).round() / q;
    if ((psnr(x0, out) >= budget.min_psnr && ssim(x0, out) >= budget.min_ssim) || tries == 40)
      break;
    delta.mul_(0.9);
  }
  ProtectOutput result;
  result.image = out.cpu();
  result.steps = static_cast<int>(done);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace cloak
