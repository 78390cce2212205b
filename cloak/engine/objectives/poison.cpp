#include <torch/torch.h>

#include "cloak/engine/objectives/objective.h"

namespace cloak {
namespace {

class PoisonObjective : public Objective {
 public:
  bool targeted() const override { return true; }
  torch::Tensor target(const torch::Tensor&, const torch::Tensor& z_target_image,
                       std::size_t) const override {
    return z_target_image;
  }
  // The share of the original's distance to the anchor that is still left, squared.
  torch::Tensor loss(const torch::Tensor& z, const torch::Tensor& z_orig,
                     const torch::Tensor& z_target) const override {
    return relative_sq_distance(z, z_target, z_orig);
  }
};

}  // namespace

std::unique_ptr<Objective> make_poison_objective() {
  return std::make_unique<PoisonObjective>();
}

}  // namespace cloak
