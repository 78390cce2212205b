// What a protection mode optimises. One objective per file; `make_objective` picks by mode.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>

namespace cloak {

class Objective {
 public:
  virtual ~Objective() = default;
  // Whether the mode moves latents toward a target (cloak, poison) or away from the original.
  virtual bool targeted() const = 0;
  // The latent this step aims at, given the original's latent `z_orig` and the latent of the
  // target image seen through the same window and transform (`z_target_image`, undefined when
  // the mode has no target image). Unused by untargeted modes.
  virtual torch::Tensor target(const torch::Tensor& z_orig, const torch::Tensor& z_target_image,
                               std::size_t encoder) const = 0;
  // The loss to minimise, scale-free so that surrogates weigh alike.
  virtual torch::Tensor loss(const torch::Tensor& z, const torch::Tensor& z_orig,
                             const torch::Tensor& z_target) const = 0;
};

// Guard: push the latent as far as possible from the image's own latent (PhotoGuard's encoder
// attack, untargeted).
std::unique_ptr<Objective> make_guard_objective();

// Poison: move the latent to the latent of an anchor image of another concept.
std::unique_ptr<Objective> make_poison_objective();

// Cloak: keep the content's latent layout but give it the decoy style's per-channel latent
// statistics (AdaIN in latent space). `decoy_stats[e]` holds the decoy's (mean, std) per channel
// for encoder e, each (1,C,1,1).
std::unique_ptr<Objective> make_cloak_objective(
    std::vector<std::pair<torch::Tensor, torch::Tensor>> decoy_stats);

// Squared distance relative to a reference distance, per surrogate: the scale-free measure the
// targeted objectives minimise.
torch::Tensor relative_sq_distance(const torch::Tensor& a, const torch::Tensor& b,
                                   const torch::Tensor& ref);

}  // namespace cloak
