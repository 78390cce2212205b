// The perturbation engine: tensor in, tensor out, libtorch only. Given an artwork it computes a
// perturbation inside a perceptual budget that moves the image, as the surrogate encoders see it,
// as far as possible toward the mode's goal, robustly to what uploads go through.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cloak/engine/butteraugli.h"
#include "cloak/engine/objectives/objective.h"
#include "cloak/engine/settings.h"
#include "cloak/weights/model_store.h"

namespace cloak {

struct ProtectInput {
  torch::Tensor image;  // (1,C,H,W), C = 1 or 3, sRGB values in [0,1]
  torch::Tensor mask;   // (1,1,H,W) in [0,1]: where change is allowed (alpha > 0, user mask)
  int bit_depth = 8;    // of the output: the result is exactly representable at this depth
};

struct ProtectOutput {
  torch::Tensor image;  // same shape as the input, rounded to `bit_depth` code values
  // How visible `image` is against the input, with its distance map (the web app's heat map), and
  // the yardstick it was held to: a JPEG of the input at the strength's quality (no distance map).
  Visibility visibility, goal;
  double psnr = 0, ssim = 0;  // of `image` against the input
  int steps = 0;
  double seconds = 0;
  // What the run optimised (cloak mode's decoy already encoded): the report measures against it.
  std::shared_ptr<const Objective> objective;
  torch::Tensor mask;  // the input's: where the run could change the image (undefined: everywhere)
};

// Called after each step with the fraction done; returning false cancels (cloak::Error, Cancelled).
using ProgressFn = std::function<bool(double fraction)>;

ProtectOutput protect(const std::vector<LoadedModel>& encoders, const ProtectInput& input,
                      const ProtectSettings& settings, const ProgressFn& progress = {});

// Whether an h x w image is optimised coarse to fine: larger than the training scale (by a
// quarter). Such images are also measured at that scale (measure_protection).
bool coarse_to_fine(int64_t h, int64_t w, const ProtectSettings& settings);
// Whether an h x w image's visibility is judged on its copy at the training scale
// (InvisibleAt::TrainingSize on an image optimised coarse to fine) rather than at its own size.
bool judged_at_training_size(int64_t h, int64_t w, const ProtectSettings& settings);
// The size a trainer's resize gives an h x w image: settings.training_pixels, same aspect.
std::pair<int64_t, int64_t> training_size(int64_t h, int64_t w, const ProtectSettings& settings);

// The side of the largest encoder's latent cell. An image narrower than one cell on either side
// gives the encoders nothing to see, so it cannot be protected.
int max_downscale(const std::vector<LoadedModel>& encoders);

// The objective `settings` describe (cloak mode encodes its decoy once per encoder here).
std::unique_ptr<Objective> make_objective(const std::vector<LoadedModel>& encoders,
                                          const ProtectSettings& settings);

// Runs an encoder on an image of any size (1,C,H,W): padded to its stride, gray expanded to RGB.
// Images larger than `tile` (plus a 64 px halo) are encoded in tiles stitched in latent space.
// `tile` must be a multiple of the encoder's downscale. Differentiable when `image` requires grad
// (IMPRESS purifies through it); the weights are frozen, so otherwise no graph is kept.
torch::Tensor encode(const LoadedModel& encoder, const torch::Tensor& image, int64_t tile = 1024);

// Resizes and centre-crops a target picture to cover (h, w), matching `channels` (1 or 3).
torch::Tensor fit_target(const torch::Tensor& target, int64_t h, int64_t w, int64_t channels);

}  // namespace cloak
