#include "cloak/report/audit.h"

#include <openssl/evp.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdio>

#include "cloak/engine/metrics.h"
#include "cloak/engine/protect.h"
#include "cloak/engine/vision.h"
#include "cloak/io/image_io.h"
#include "cloak/report/measure.h"
#include "cloak/report/noise_floor.h"

namespace cloak {

namespace F = torch::nn::functional;

namespace {

// At most `side` px a side (area averaging), for looking at rather than measuring.
torch::Tensor downscaled(const torch::Tensor& x, int64_t side) {
  const double scale = std::min(
      1.0, static_cast<double>(side) / static_cast<double>(std::max(x.size(2), x.size(3))));
  if (scale == 1.0) return x;
  return F::interpolate(
      x, F::InterpolateFuncOptions()
             .size(std::vector<int64_t>{std::max<int64_t>(1, std::lround(x.size(2) * scale)),
                                        std::max<int64_t>(1, std::lround(x.size(3) * scale))})
             .mode(torch::kArea));
}

// Noise strength of the re-synthesis attack (images in [0,1]), as in Honig et al., ICLR 2025.
constexpr double kResynthesisNoise = 0.05;
// IMPRESS: weight of the consistency term against closeness to the published copy, and the step.
constexpr double kImpressConsistency = 1.0;
constexpr double kImpressStep = 0.004;
constexpr int64_t kImpressTile = 256;

}  // namespace

torch::Tensor reconstruct(const Autoencoder& ae, const torch::Tensor& x) {
  auto y = ae.decoder.net->forward(encode(ae.encoder, x)).clamp(0, 1);
  return y.slice(2, 0, x.size(2)).slice(3, 0, x.size(3));
}

double reconstruction_inconsistency(const Autoencoder& ae, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return (reconstruct(ae, x) - as_rgb(x)).pow(2).mean().item<double>();
}

torch::Tensor impress_purify(const Autoencoder& ae, const torch::Tensor& x0, int steps) {
  const auto target = as_rgb(x0).detach();
  auto out = target.clone();
  // Tile by tile: the gradient through the autoencoder keeps every activation, which a
  // multi-megapixel image would not fit in memory (a mimic can purify the same way).
  for (int64_t y = 0; y < target.size(2); y += kImpressTile)
    for (int64_t x = 0; x < target.size(3); x += kImpressTile) {
      auto tile = [&](const torch::Tensor& t) {
        return t.slice(2, y, y + kImpressTile).slice(3, x, x + kImpressTile);
      };
      const auto published = tile(target);
      auto p = published.clone().requires_grad_(true);
      torch::optim::Adam adam({p}, torch::optim::AdamOptions(kImpressStep));
      for (int i = 0; i < steps; ++i) {
        adam.zero_grad();
        // Each picture of a batch by its own loss, as if purified alone.
        auto loss = ((p - published).pow(2).mean({1, 2, 3}) +
                     kImpressConsistency * (reconstruct(ae, p) - p).pow(2).mean({1, 2, 3}))
                        .sum();
        loss.backward();
        adam.step();
        torch::NoGradGuard no_grad;
        p.clamp_(0, 1);
      }
      tile(out).copy_(p.detach());
    }
  // Gray stays gray: the mean of the three purified channels.
  return x0.size(1) == 1 ? out.mean(1, true) : out;
}

const std::vector<Attack>& audit_attacks() {
  static const std::vector<Attack> attacks = {
      {"jpeg50", "JPEG quality 50", true},
      {"jpeg75", "JPEG quality 75", true},
      {"jpeg95", "JPEG quality 95", true},
      {"resize50", "resize to 50% and back", true},
      {"resize1mp", "resize to about 1 megapixel", true},
      {"blur0.5", "Gaussian blur sigma 0.5", true},
      {"blur1", "Gaussian blur sigma 1", true},
      {"noise_resynthesis", "noise sigma 0.05, then encode and decode (noisy upscaling)", false},
      {"impress", "IMPRESS purification (consistency under encode and decode)", false},
  };
  return attacks;
}

torch::Tensor apply_attack(const std::string& name, const torch::Tensor& image,
                           const Autoencoder& ae) {
  const int64_t h = image.size(2), w = image.size(3);
  if (name == "jpeg50") return opencv_jpeg(image, 50);
  if (name == "jpeg75") return opencv_jpeg(image, 75);
  if (name == "jpeg95") return opencv_jpeg(image, 95);
  if (name == "resize50")
    return opencv_resize_to(
        opencv_resize_to(image, std::max<int64_t>(1, h / 2), std::max<int64_t>(1, w / 2)), h, w);
  if (name == "resize1mp") {
    const double scale = std::sqrt(1e6 / static_cast<double>(h * w));
    return opencv_resize_to(image, std::max<int64_t>(1, std::lround(h * scale)),
                            std::max<int64_t>(1, std::lround(w * scale)));
  }
  if (name == "blur0.5") return opencv_blur(image, 0.5);
  if (name == "blur1") return opencv_blur(image, 1.0);
  torch::NoGradGuard no_grad;
  if (name == "noise_resynthesis") {
    auto gen = at::detail::createCPUGenerator(20251125);
    auto noise = at::normal(0.0, kResynthesisNoise, image.sizes(), gen);
    auto y = reconstruct(ae, (image + noise).clamp(0, 1));
    return image.size(1) == 1 ? y.mean(1, true) : y;
  }
  if (name == "impress") {
    torch::AutoGradMode grad(true);
    return impress_purify(ae, image);
  }
  throw std::invalid_argument("unknown attack " + name);
}

namespace {

// The original, the protected copy and the noise copy through one attack. IMPRESS purifies the
// three as one batch: one pass through the autoencoder per step instead of three (1.7x faster).
std::array<torch::Tensor, 3> attack_each(const std::string& name,
                                         const std::array<torch::Tensor, 3>& images,
                                         const Autoencoder& ae) {
  if (name == "impress") {
    const auto all = apply_attack(name, torch::cat({images[0], images[1], images[2]}), ae);
    return {all.slice(0, 0, 1), all.slice(0, 1, 2), all.slice(0, 2, 3)};
  }
  return {apply_attack(name, images[0], ae), apply_attack(name, images[1], ae),
          apply_attack(name, images[2], ae)};
}

}  // namespace

AuditReport audit(const std::vector<LoadedModel>& encoders, const Autoencoder& ae,
                  const torch::Tensor& original, const torch::Tensor& protected_, int bit_depth,
                  Strength strength, const torch::Tensor& mask) {
  AuditReport r;
  r.threshold = strength_budget(strength).min_shift_jpeg75;
  r.min_multiple = strength_budget(strength).min_floor_multiple;
  for (const auto& e : encoders) r.encoders.push_back(e.spec->name);
  r.survives = true;
  r.original_preview = downscaled(original, 512);
  r.protected_preview = downscaled(protected_, 512);
  r.visibility = butteraugli(original, protected_);
  r.jpeg_equivalent = jpeg_equivalent(original, r.visibility);
  const NoiseCopy noise = noise_as_visible(original, r.visibility.norm3, bit_depth,
                                           floor_mask(mask, original, protected_));
  r.floor_norm3 = noise.norm3;
  for (const auto& attack : audit_attacks()) {
    AttackResult a;
    a.attack = attack;
    const auto [attacked_original, attacked, attacked_noise] =
        attack_each(attack.name, {original, protected_, noise.image}, ae);
    torch::NoGradGuard no_grad;
    const double n = static_cast<double>(encoders.size());
    for (const auto& e : encoders) {
      const auto z0 = encode(e, attacked_original);
      a.shift.push_back(relative_shift(encode(e, attacked), z0));
      a.floor.push_back(relative_shift(encode(e, attacked_noise), z0));
      a.mean_shift += a.shift.back() / n;
      a.mean_floor += a.floor.back() / n;
    }
    const Verdict v = judge(a.mean_shift, a.mean_floor, strength);
    a.multiple = v.multiple;
    a.survives = v.protected_;
    a.psnr_vs_protected =
        attacked.sizes() == protected_.sizes() ? psnr(protected_, attacked) : std::nan("");
    a.preview = downscaled(attacked, 512);
    if (attack.verdict && !a.survives) r.survives = false;
    r.results.push_back(std::move(a));
  }
  return r;
}

nlohmann::json to_json(const AuditReport& r) {
  nlohmann::json j = {{"threshold", r.threshold},
                      {"min_multiple_of_floor", r.min_multiple},
                      {"noise_floor_butteraugli_3norm", r.floor_norm3},
                      {"survives", r.survives},
                      {"butteraugli_max", r.visibility.max},
                      {"butteraugli_3norm", r.visibility.norm3}};
  if (r.jpeg_equivalent) j["jpeg_equivalent"] = *r.jpeg_equivalent;
  for (const auto& a : r.results) {
    nlohmann::json row = {{"attack", a.attack.name},
                          {"description", a.attack.description},
                          {"counts_for_verdict", a.attack.verdict},
                          {"mean_latent_shift", a.mean_shift},
                          {"mean_noise_floor", a.mean_floor},
                          {"multiple_of_floor", a.multiple},
                          {"survives", a.survives}};
    if (!std::isnan(a.psnr_vs_protected)) row["psnr_vs_protected_db"] = a.psnr_vs_protected;
    for (std::size_t e = 0; e < r.encoders.size(); ++e) {
      row["latent_shift"][r.encoders[e]] = a.shift[e];
      row["noise_floor"][r.encoders[e]] = a.floor[e];
    }
    j["attacks"].push_back(row);
  }
  return j;
}

namespace {

// A PNG of at most 256 px a side as a data: URL.
std::string thumbnail(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  auto t = downscaled(as_rgb(x), 256).clamp(0, 1).contiguous();
  Image img;
  img.height = static_cast<int>(t.size(2));
  img.width = static_cast<int>(t.size(3));
  img.color.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  const auto png = encode_image(img, "thumbnail.png", 95);
  std::string b64(4 * ((png.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), png.data(),
                                static_cast<int>(png.size()));
  b64.resize(static_cast<std::size_t>(n));
  return "data:image/png;base64," + b64;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

std::string figure(const std::string& caption, const torch::Tensor& x, const Autoencoder& ae) {
  torch::NoGradGuard no_grad;
  return "<figure><img src=\"" + thumbnail(x) + "\" alt=\"" + escape(caption) + "\"><img src=\"" +
         thumbnail(reconstruct(ae, x)) + "\" alt=\"what the AI sees of " + escape(caption) +
         "\"><figcaption>" + escape(caption) + " | what the AI sees</figcaption></figure>\n";
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

std::string audit_html(const AuditReport& r, const Autoencoder& ae, const std::string& title) {
  std::string h =
      "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Cloak audit: " +
      escape(title) +
      "</title><style>body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;"
      "padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid "
      "#ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
      ".no{color:#a00;font-weight:bold}.yes{color:#070}figure{display:inline-block;margin:0 1em "
      "1em 0}figure img{width:160px;margin-right:2px}figcaption{font-size:13px}</style>\n"
      "<h1>Cloak audit: " +
      escape(title) +
      "</h1>\n<p>What a mimic might do to the published copy, and the latent shift "
      "that remains (the same step applied to the original is the reference), beside what plain "
      "noise as visible keeps (Butteraugli 3-norm " +
      fixed(r.floor_norm3, 2) + "): that much is not protection. Thresholds: a shift of " +
      fixed(r.threshold, 2) + " and " + fixed(r.min_multiple, 2) + "x the noise's: " +
      (r.survives ? "<span class=yes>the protection survives every JPEG, resize and blur step"
                  : "<span class=no>the protection does NOT survive every JPEG, resize and blur "
                    "step") +
      "</span>.</p>\n<p>How visible the protection is: Butteraugli " + fixed(r.visibility.max, 2) +
      " at most, " + fixed(r.visibility.norm3, 2) + " overall (1 is just visible), " +
      describe_jpeg_equivalent(r.jpeg_equivalent) + ".</p>\n<table><tr><th>attack</th>";
  for (const auto& e : r.encoders) h += "<th>" + escape(e) + "</th>";
  h += "<th>mean</th><th>noise as visible</th><th>x noise</th><th>survives</th><th>PSNR vs "
       "published</th></tr>\n";
  for (const auto& a : r.results) {
    h += "<tr><td>" + escape(a.attack.description) + "</td>";
    for (double s : a.shift) h += "<td>" + fixed(s, 3) + "</td>";
    h += "<td>" + fixed(a.mean_shift, 3) + "</td><td>" + fixed(a.mean_floor, 3) + "</td><td>" +
         fixed(a.multiple, 2) + "x</td><td class=" + (a.survives ? "yes>yes" : "no>no") +
         "</td><td>" +
         (std::isnan(a.psnr_vs_protected) ? "-" : fixed(a.psnr_vs_protected, 1) + " dB") +
         "</td></tr>\n";
  }
  h += "</table>\n<h2>Pictures</h2>\n" + figure("original", r.original_preview, ae) +
       figure("protected (published)", r.protected_preview, ae);
  for (const auto& a : r.results)
    h += figure("published, then " + a.attack.description, a.preview, ae);
  h += "</html>\n";
  return h;
}

}  // namespace cloak
