// The perturbation engine: tensor in, tensor out, libtorch only. Given an artwork it computes a
// perturbation inside a perceptual budget that moves the image, as the surrogate encoders see it,
// as far as possible toward the mode's goal, robustly to what uploads go through.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cloak/model_store.h"
#include "cloak/objectives/objective.h"

namespace cloak {

enum class Strength { Low, Medium, High };
enum class Preset { Fast, Balanced, Max };

// The quality each strength promises: the floors on PSNR and SSIM that the output never goes
// below, and the L-infinity bound in textured areas (8-bit code values) that the optimisation
// starts from (widened up to twice when an image would land above its floors); and the
// protection `verify` expects of it: the mean relative latent shift after JPEG q75 over the
// surrogates.
struct StrengthBudget {
  double eps_codes, min_psnr, min_ssim, min_shift_jpeg75;
};
StrengthBudget strength_budget(Strength s);
// Full passes over every pixel each preset makes.
int preset_sweeps(Preset p);

std::string to_string(Mode m);
std::string to_string(Strength s);
std::string to_string(Preset p);

struct ProtectSettings {
  Mode mode = Mode::Guard;
  Strength strength = Strength::Medium;
  Preset preset = Preset::Balanced;
  std::uint64_t seed = 0;
  torch::Tensor target;          // (1,3,h,w) in [0,1]: poison's anchor or cloak's decoy style
  std::string decoy = "cubist";  // cloak's built-in decoy when no target is given
  int tile = 256;                // optimisation window side: bounds memory at any image size
  // The scale fine-tuning pipelines resize to before encoding (about 1 MP): a larger image is
  // optimised at this scale first, then refined at native size (0: always at native size).
  double training_pixels = 1024.0 * 1024.0;
  torch::Device device = torch::kCPU;
};

struct ProtectInput {
  torch::Tensor image;  // (1,C,H,W), C = 1 or 3, sRGB values in [0,1]
  torch::Tensor mask;   // (1,1,H,W) in [0,1]: where change is allowed (alpha > 0, user mask)
  int bit_depth = 8;    // of the output: the result is exactly representable at this depth
};

struct ProtectOutput {
  torch::Tensor image;  // same shape as the input, rounded to `bit_depth` code values
  int steps = 0;
  double seconds = 0;
};

// Called after each step with the fraction done; returning false cancels (cloak::Error, Cancelled).
using ProgressFn = std::function<bool(double fraction)>;

ProtectOutput protect(const std::vector<LoadedModel>& encoders, const ProtectInput& input,
                      const ProtectSettings& settings, const ProgressFn& progress = {});

// Whether an h x w image is optimised coarse to fine: larger than the training scale (by a
// quarter). Such images are also measured at that scale (measure_protection).
bool coarse_to_fine(int64_t h, int64_t w, const ProtectSettings& settings);
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
