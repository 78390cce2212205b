// The perceptual budget: how much each pixel may change, and keeping a perturbation inside it.
#pragma once

#include <torch/types.h>

namespace cloak {

// Per-pixel L-infinity bound (1,1,H,W) for `image` (1,C,H,W in [0,1]): `eps` where texture hides
// change, down to a fifth of it in flat colour and smooth gradients, 0 where `mask` (1,1,H,W,
// optional) is 0. Rounded down to whole code values of `bit_depth`, so that rounding the output can
// never exceed it.
torch::Tensor perceptual_budget(const torch::Tensor& image, const torch::Tensor& mask, double eps,
                                int bit_depth);

// Projects `delta` in place onto the budget: |delta| <= eps_map, 0 <= x0 + delta <= 1, and a mean
// squared error no larger than `max_mse`.
void project_to_budget(torch::Tensor& delta, const torch::Tensor& x0, const torch::Tensor& eps_map,
                       double max_mse);

// Rounds `x` to the code values of `bit_depth` with a straight-through gradient, so the optimiser
// sees what will be saved.
torch::Tensor quantize_ste(const torch::Tensor& x, int bit_depth);

}  // namespace cloak
