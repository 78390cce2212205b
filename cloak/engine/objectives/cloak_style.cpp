#include <torch/torch.h>

#include "cloak/engine/objectives/objective.h"

namespace cloak {
namespace {

class CloakObjective : public Objective {
 public:
  explicit CloakObjective(std::vector<std::pair<torch::Tensor, torch::Tensor>> stats)
      : stats_(std::move(stats)) {}
  bool targeted() const override { return true; }
  // The original's latent, renormalised per channel to the decoy style's statistics.
  torch::Tensor target(const torch::Tensor& z_orig, const torch::Tensor&,
                       std::size_t encoder) const override {
    const auto& [mean, std] = stats_.at(encoder);
    auto m = z_orig.mean({2, 3}, true);
    auto s = z_orig.std({2, 3}, false, true) + 1e-5;
    return (z_orig - m) / s * std + mean;
  }
  torch::Tensor loss(const torch::Tensor& z, const torch::Tensor& z_orig,
                     const torch::Tensor& z_target) const override {
    return relative_sq_distance(z, z_target, z_orig);
  }

 private:
  std::vector<std::pair<torch::Tensor, torch::Tensor>> stats_;
};

}  // namespace

std::unique_ptr<Objective> make_cloak_objective(
    std::vector<std::pair<torch::Tensor, torch::Tensor>> decoy_stats) {
  return std::make_unique<CloakObjective>(std::move(decoy_stats));
}

}  // namespace cloak
