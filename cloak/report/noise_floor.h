// The floor every protection figure is judged against: what plain random noise, as visible as the
// protection, moves the encoders by. JPEG's quantisation, a resize's rounding and a purifier's
// optimiser turn any small difference into a latent difference of their own; that part is not
// protection, so a verdict counts a shift only in multiples of the noise copy's.
#pragma once

#include <torch/types.h>

namespace cloak {

struct NoiseCopy {
  torch::Tensor image;
  double norm3 = 0;  // its Butteraugli 3-norm against the original, as measured
};

// `original` (1,C,H,W) in [0,1] plus random signs (+-1, seeded, the same every run), each of
// magnitude `a` code values at `bit_depth` (8 or 16) rounded down or up by a fixed dither, clamped
// to [0,1], with `a` chosen so that its Butteraugli 3-norm against `original` is `norm3` within 3%
// (the closest found when the rounding allows no closer). `original` itself for `norm3` 0.
// `mask` (1,1,H,W, optional): the noise only where it is above 0, where the protection it is the
// floor of could change the image (not under transparent pixels, not outside a selection): noise
// there would move the encoders by what no viewer sees and the protection was never allowed.
NoiseCopy noise_as_visible(const torch::Tensor& original, double norm3, int bit_depth,
                           const torch::Tensor& mask = {});

// Where the floor of `copy` (a protected copy of `original`, both (1,C,H,W)) puts its noise: where
// `mask` allowed the protection, and wherever the copy changed the original all the same (a copy
// that changed the colour under transparent pixels is judged against noise there too). Undefined
// (everywhere) when `mask` is.
torch::Tensor floor_mask(const torch::Tensor& mask, const torch::Tensor& original,
                         const torch::Tensor& copy);

// How far above the floor: `shift` / `floor` (finite: a floor of zero counts as 1e-9).
double floor_multiple(double shift, double floor);

}  // namespace cloak
