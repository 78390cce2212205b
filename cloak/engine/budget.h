// The perceptual budget: how much each pixel may change, and keeping a perturbation inside it.
#pragma once

#include <torch/types.h>

namespace cloak {

// How much of a change each region of `image` (1,C,H,W in [0,1]) hides, (1,1,H,W): 1 where
// texture hides it, less along clean edges (which hide less than texture does), down to a fifth in
// flat colour and smooth gradients.
torch::Tensor texture_masking(const torch::Tensor& image);

// Per-pixel L-infinity bound (1,1,H,W): `eps` times the masking, 0 where `mask` (1,1,H,W,
// optional) is 0. Rounded down to whole code values of `bit_depth`, so that rounding the output
// can never exceed it.
torch::Tensor perceptual_budget(const torch::Tensor& masking, const torch::Tensor& mask, double eps,
                                int bit_depth);

// How visible the change may be around each pixel (1,1,H,W), as a Butteraugli distance: in
// texture as visible as a yardstick's change (`yardstick`: its distance map (H,W), a JPEG's), in
// flat colour `invisible`, in between by the masking. A JPEG shifts flat colour as a whole, which
// Butteraugli counts as visible as the patterns a perturbation would draw there; an artist sees
// the patterns, not the shift.
torch::Tensor visibility_level(const torch::Tensor& masking, const torch::Tensor& yardstick,
                               double invisible);

// Projects `delta` in place onto the budget: |delta| <= eps_map and 0 <= x0 + delta <= 1.
void project_to_budget(torch::Tensor& delta, const torch::Tensor& x0, const torch::Tensor& eps_map);

// The Butteraugli distance around each pixel, from a distance map (H,W): the map's maximum within
// 3 px, averaged over 15 px. (1,1,H,W). What the visibility budget compares, so that a gain drawn
// from it varies slowly and draws no edges of its own.
torch::Tensor local_distance(const torch::Tensor& distmap);

// The gain (1,1,H,W), pixel by pixel, that brings the local distance of a perturbation whose
// distance map is `distmap` to `level` (1,1,H,W), within [lo, hi]. A perturbation's distance grows
// about in proportion to its size, so scaling it by the gain shrinks it where it shows more than
// the level allows and grows it where it shows less.
torch::Tensor visibility_gain(const torch::Tensor& distmap, const torch::Tensor& level, double lo,
                              double hi);

// The step direction from a gradient (1,C,H,W) when a change of chroma costs 1/`weight` of the same
// change of luma (JPEG's YCbCr: Y, Cb, Cr): the gradient in YCbCr with Cb and Cr counted `weight`
// times, back in RGB. The eye resolves fine changes of colour much less than fine changes of
// lightness (which is why JPEG halves chroma's resolution), and so does Butteraugli. A gray
// gradient (C = 1) has no chroma and is returned as it is.
torch::Tensor favour_chroma(const torch::Tensor& grad, double weight);

// Rounds `x` to the code values of `bit_depth` with a straight-through gradient, so the optimiser
// sees what will be saved.
torch::Tensor quantize_ste(const torch::Tensor& x, int bit_depth);

}  // namespace cloak
