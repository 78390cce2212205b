// The red team: what a mimic does to a published copy before training on it or editing it, and how
// much of the protection survives each step. Tensor in, figures out.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloak/engine/butteraugli.h"
#include "cloak/engine/settings.h"
#include "cloak/weights/model_store.h"

namespace cloak {

// The taef2 autoencoder (FLUX.2 VAE surrogate): the re-synthesis and purification attacks run
// through it, and it shows what the AI sees.
struct Autoencoder {
  LoadedModel encoder, decoder;
};

// D(E(x)) cropped to x's size, in [0,1], RGB: the picture the autoencoder rebuilds.
torch::Tensor reconstruct(const Autoencoder& ae, const torch::Tensor& x);

// Mean squared difference between x and its reconstruction: what IMPRESS-style purification
// minimises (protected images are inconsistent under encode -> decode).
double reconstruction_inconsistency(const Autoencoder& ae, const torch::Tensor& x);

// IMPRESS-style purification (Cao et al., NeurIPS 2023): Adam steps on the pixels that make the
// image consistent under encode -> decode while keeping it close to the published copy `x0`, in
// 256 px tiles (the gradient through the autoencoder would not fit in memory on large images).
// Each picture of a batch `x0` is purified by its own loss, as if alone.
torch::Tensor impress_purify(const Autoencoder& ae, const torch::Tensor& x0, int steps = 30);

struct Attack {
  std::string name, description;
  bool verdict;  // one of the JPEG/resize/blur set that audit's exit status judges
};
// JPEG q50/75/95, resize 50% and back, resize to about 1 megapixel, blur sigma 0.5 and 1, noise
// (sigma 0.05) + re-synthesis through the autoencoder, IMPRESS purification.
const std::vector<Attack>& audit_attacks();

// Applies one attack to a (1,C,H,W) image in [0,1]; deterministic. The result keeps the input's
// size, except "resize1mp", which is the image at about one megapixel.
torch::Tensor apply_attack(const std::string& name, const torch::Tensor& image,
                           const Autoencoder& ae);

struct AttackResult {
  Attack attack;
  std::vector<double> shift;  // per encoder: ||E(a(p)) - E(a(o))|| / ||E(a(o))||
  double mean_shift = 0;      // over encoders
  std::vector<double> floor;  // the same for the noise copy (noise_floor.h): not protection
  double mean_floor = 0;
  double multiple = 0;           // mean_shift / mean_floor
  bool survives = false;         // mean_shift >= threshold and multiple >= min_multiple
  double psnr_vs_protected = 0;  // what the attack cost the published image
  torch::Tensor preview;         // the attacked published copy, at most 512 px a side
};

struct AuditReport {
  std::vector<std::string> encoders;
  std::vector<AttackResult> results;
  Visibility visibility;  // of the protection itself: the published copy against the original
  std::optional<int> jpeg_equivalent;
  double floor_norm3 = 0;  // the noise copy's Butteraugli 3-norm
  // The strength's verify thresholds: the shift, and its multiple of the noise copy's.
  double threshold = 0, min_multiple = 0;
  bool survives = false;                              // every verdict attack survives
  torch::Tensor original_preview, protected_preview;  // at most 512 px a side
};

// Every attack applied to the original, the published copy and a noise copy of the original as
// visible as the published one (at `bit_depth`; its noise where floor_mask puts it, as in
// measure_protection), judged by `strength`'s verify thresholds.
AuditReport audit(const std::vector<LoadedModel>& encoders, const Autoencoder& ae,
                  const torch::Tensor& original, const torch::Tensor& protected_, int bit_depth,
                  Strength strength, const torch::Tensor& mask = {});

nlohmann::json to_json(const AuditReport& r);
// One self-contained HTML page: thumbnails of original, protected and every attacked copy, what
// the AI sees of each, and the figures.
std::string audit_html(const AuditReport& r, const Autoencoder& ae, const std::string& title);

}  // namespace cloak
