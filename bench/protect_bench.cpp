// Benchmarks of the engine on the public-domain samples in ../shared/samples (never run by the
// tests). Prints Markdown tables for bench/RESULTS.md.
//   cloak_bench speed SIZE...     time and peak memory of the default preset at SIZExSIZE
//   cloak_bench quality           PSNR/SSIM per strength on every sample
//   cloak_bench transfer          white-box and held-out protection against a PhotoGuard baseline
//   cloak_bench audit [N [SIZE]]  what survives each audit step, against the same baseline
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "cloak/audit.h"
#include "cloak/decoys.h"
#include "cloak/engine.h"
#include "cloak/image.h"
#include "cloak/measure.h"
#include "cloak/metrics.h"
#include "cloak/protect_file.h"

using namespace cloak;
namespace fs = std::filesystem;
namespace F = torch::nn::functional;

namespace {

const fs::path kSamples = fs::path(CLOAK_SOURCE_DIR).parent_path() / "shared" / "samples";
const char* kPaintings[] = {"monet_water_lilies_1919.jpg", "vangogh_starry_night.jpg",
                            "hokusai_great_wave_off_kanagawa.jpg",
                            "vermeer_girl_with_a_pearl_earring.jpg"};

// A size x size view of a painting: centre crop of the largest square, resized.
torch::Tensor painting(const std::string& name, int size) {
  auto x = image_tensor(read_image(kSamples / name));
  const auto s = std::min(x.size(2), x.size(3));
  x = x.slice(2, (x.size(2) - s) / 2, (x.size(2) - s) / 2 + s)
          .slice(3, (x.size(3) - s) / 2, (x.size(3) - s) / 2 + s);
  x = F::interpolate(x, F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{size, size})
                            .mode(torch::kBicubic)
                            .align_corners(false));
  return ((x.clamp(0, 1) * 255).round() / 255).contiguous();
}

std::vector<LoadedModel> load(const std::vector<std::string>& names) {
  std::vector<LoadedModel> out;
  for (const auto& n : names) out.push_back(load_model(model_spec(n), model_search_path()));
  return out;
}

double peak_rss_gib() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0 / 1024.0;
}

// PhotoGuard's encoder attack as published: untargeted, sign steps from a random start, uniform
// L-inf, one surrogate, full image, no transformations.
torch::Tensor photoguard_pgd(const LoadedModel& enc, const torch::Tensor& x, double eps,
                             int steps) {
  torch::Tensor z0;
  {
    torch::NoGradGuard g;
    z0 = encode(enc, x);
  }
  // Random start, as PhotoGuard does: at delta = 0 the distance's gradient is exactly zero.
  torch::manual_seed(0);
  auto delta = (torch::rand_like(x) * 2 - 1) * eps;
  for (int i = 0; i < steps; ++i) {
    auto d = delta.clone().requires_grad_(true);
    auto z = enc.net->forward((x + d).clamp(0, 1).contiguous(at::MemoryFormat::ChannelsLast));
    auto loss = -(z - z0).square().sum();
    auto g = torch::autograd::grad({loss}, {d})[0];
    torch::NoGradGuard ng;
    const double step = eps / 4 * (1 - static_cast<double>(i) / steps) + eps / 40;
    delta = (delta - step * g.sign()).clamp(-eps, eps);
    delta = (x + delta).clamp(0, 1) - x;
  }
  return ((x + delta).clamp(0, 1) * 255).round() / 255;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void speed(const std::vector<int>& sizes) {
  auto enc = load({"taef2_encoder", "taesana_encoder"});
  std::printf(
      "| size | protect (s) | measure (s) | steps | PSNR | SSIM | peak RSS (GiB) "
      "|\n|---|---|---|---|---|---|---|\n");
  for (int size : sizes) {
    auto x = painting(kPaintings[0], size);
    ProtectSettings s;
    auto t = std::chrono::steady_clock::now();
    auto out = protect(enc, {x, {}, 8}, s);
    const double tp = seconds_since(t);
    if (size > 2048) {  // the full report would dominate; time the protection alone
      std::printf("| %dx%d | %.1f | - | %d | %.2f | - | %.2f |\n", size, size, tp, out.steps,
                  psnr(x, out.image), peak_rss_gib());
    } else {
      t = std::chrono::steady_clock::now();
      auto r = measure_protection(enc, x, out.image, 8, s);
      std::printf("| %dx%d | %.1f | %.1f | %d | %.2f | %.4f | %.2f |\n", size, size, tp,
                  seconds_since(t), out.steps, r.psnr, r.ssim, peak_rss_gib());
    }
    std::fflush(stdout);
  }
}

void quality() {
  auto enc = load({"taef2_encoder", "taesana_encoder"});
  std::printf(
      "| painting (512x512) | strength | PSNR | SSIM | L-inf | mean shift after JPEG q75 "
      "|\n|---|---|---|---|---|---|\n");
  for (const char* p : kPaintings) {
    auto x = painting(p, 512);
    for (Strength st : {Strength::Low, Strength::Medium, Strength::High}) {
      ProtectSettings s;
      s.strength = st;
      auto out = protect(enc, {x, {}, 8}, s);
      auto r = measure_protection(enc, x, out.image, 8, s);
      std::printf("| %s | %s | %.2f | %.4f | %.0f | %.3f |\n", p, to_string(st).c_str(), r.psnr,
                  r.ssim, r.linf_codes, mean_shift_jpeg75(r));
      std::fflush(stdout);
    }
  }
}

struct Row {
  double psnr = 0, white = 0, white_jpeg = 0, held = 0, held_jpeg = 0;
};

// Shift measured on the surrogate `measure_on` (relative to the same transform of the original).
std::pair<double, double> shift_on(const LoadedModel& m, const torch::Tensor& x,
                                   const torch::Tensor& y) {
  ProtectSettings untargeted;
  auto r = measure_protection({m}, x, y, 8, untargeted);
  return {r.surrogates[0].shift, r.surrogates[0].shift_jpeg75};
}

void transfer() {
  auto all = load({"taef2_encoder", "taesana_encoder"});
  std::printf(
      "Optimised on one surrogate, measured on it (white-box) and on the other (held out).\n\n");
  std::printf(
      "| painting | method | PSNR | white-box shift | white-box after JPEG75 | held-out shift | "
      "held-out after JPEG75 |\n|---|---|---|---|---|---|---|\n");
  std::map<std::string, std::vector<Row>> rows;
  for (const char* p : {kPaintings[0], kPaintings[1], kPaintings[2]}) {
    auto x = painting(p, 512);
    for (int held : {1, 0}) {  // hold out taesana, then taef2
      const LoadedModel& train = all[static_cast<std::size_t>(1 - held)];
      const LoadedModel& test = all[static_cast<std::size_t>(held)];
      auto report = [&](const std::string& method, const torch::Tensor& y) {
        Row r;
        r.psnr = psnr(x, y);
        std::tie(r.white, r.white_jpeg) = shift_on(train, x, y);
        std::tie(r.held, r.held_jpeg) = shift_on(test, x, y);
        rows[method + " (" + train.spec->name + ")"].push_back(r);
        std::printf("| %s | %s on %s | %.2f | %.3f | %.3f | %.3f | %.3f |\n", p, method.c_str(),
                    train.spec->name.c_str(), r.psnr, r.white, r.white_jpeg, r.held, r.held_jpeg);
        std::fflush(stdout);
      };
      ProtectSettings s;
      auto ours = protect({train}, {x, {}, 8}, s).image;
      report("cloak guard", ours);
      // Guard variant: toward a built-in pattern's latent instead of away from the image's own.
      ProtectSettings pattern;
      pattern.mode = Mode::Poison;
      pattern.target = make_decoy("woodcut", 512);
      report("pattern-targeted", protect({train}, {x, {}, 8}, pattern).image);
      // Baseline at the same PSNR: uniform eps with MSE = eps^2 (sign PGD saturates).
      const double eps = std::pow(10.0, -psnr(x, ours) / 20);
      report("PhotoGuard PGD", photoguard_pgd(train, x, eps, 40));
    }
  }
  std::printf(
      "\nMeans over paintings:\n\n| method | PSNR | white-box after JPEG75 | held-out shift | "
      "held-out after JPEG75 |\n|---|---|---|---|---|\n");
  for (const auto& [method, rs] : rows) {
    Row m;
    for (const auto& r : rs) {
      m.psnr += r.psnr / rs.size();
      m.white_jpeg += r.white_jpeg / rs.size();
      m.held += r.held / rs.size();
      m.held_jpeg += r.held_jpeg / rs.size();
    }
    std::printf("| %s | %.2f | %.3f | %.3f | %.3f |\n", method.c_str(), m.psnr, m.white_jpeg,
                m.held, m.held_jpeg);
  }
}

// What survives each audit step, Cloak's default against PhotoGuard's encoder attack at the same
// PSNR (on taef2, as PhotoGuard attacks one autoencoder), both measured on both surrogates.
void audit_table(int count, int size) {
  auto enc = load({"taef2_encoder", "taesana_encoder"});
  const Autoencoder ae{load({"taef2_encoder"})[0], load({"taef2_decoder"})[0]};
  const double threshold = strength_budget(Strength::Medium).min_shift_jpeg75;
  std::map<std::string, std::pair<double, double>> sums;  // attack -> (cloak, baseline)
  std::printf(
      "| painting (%dx%d) | attack | Cloak shift left | PhotoGuard shift left | ratio |\n"
      "|---|---|---|---|---|\n",
      size, size);
  for (int i = 0; i < count; ++i) {
    auto x = painting(kPaintings[i], size);
    auto ours = protect(enc, {x, {}, 8}, ProtectSettings{}).image;
    const double eps = std::pow(10.0, -psnr(x, ours) / 20);
    auto baseline = photoguard_pgd(enc[0], x, eps, 40);
    const auto a = audit(enc, ae, x, ours, threshold), b = audit(enc, ae, x, baseline, threshold);
    for (std::size_t k = 0; k < a.results.size(); ++k) {
      const auto& name = a.results[k].attack.description;
      std::printf("| %s | %s | %.3f | %.3f | %.2fx |\n", kPaintings[i], name.c_str(),
                  a.results[k].mean_shift, b.results[k].mean_shift,
                  a.results[k].mean_shift / b.results[k].mean_shift);
      sums[name].first += a.results[k].mean_shift / count;
      sums[name].second += b.results[k].mean_shift / count;
    }
    std::fflush(stdout);
  }
  std::printf(
      "\nMeans over paintings:\n\n| attack | Cloak | PhotoGuard | ratio |\n|---|---|---|---|\n");
  for (const auto& attack : audit_attacks()) {
    const auto& [c, b] = sums[attack.description];
    std::printf("| %s | %.3f | %.3f | %.2fx |\n", attack.description.c_str(), c, b, c / b);
  }
}

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(2);
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "speed") {
    std::vector<int> sizes;
    for (int i = 2; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
    speed(sizes.empty() ? std::vector<int>{512, 1024} : sizes);
  } else if (what == "quality") {
    quality();
  } else if (what == "transfer") {
    transfer();
  } else if (what == "audit") {
    audit_table(argc > 2 ? std::atoi(argv[2]) : 4, argc > 3 ? std::atoi(argv[3]) : 512);
  } else {
    std::fprintf(
        stderr, "usage: cloak_bench speed [SIZE...] | quality | transfer | audit [COUNT [SIZE]]\n");
    return 2;
  }
}
