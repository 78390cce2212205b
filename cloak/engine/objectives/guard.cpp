#include <torch/torch.h>

#include "cloak/engine/objectives/objective.h"

namespace cloak {
namespace {

class GuardObjective : public Objective {
 public:
  bool targeted() const override { return false; }
  torch::Tensor target(const torch::Tensor&, const torch::Tensor&, std::size_t) const override {
    return {};
  }
  // Maximise ||z - z_orig||^2 / ||z_orig||^2.
  torch::Tensor loss(const torch::Tensor& z, const torch::Tensor& z_orig,
                     const torch::Tensor&) const override {
    return -(z - z_orig).square().sum() / (z_orig.square().sum() + 1e-8);
  }
};

}  // namespace

std::unique_ptr<Objective> make_guard_objective() {
  return std::make_unique<GuardObjective>();
}

torch::Tensor relative_sq_distance(const torch::Tensor& a, const torch::Tensor& b,
                                   const torch::Tensor& ref) {
  return (a - b).square().sum() / ((ref - b).square().sum() + 1e-8);
}

}  // namespace cloak
