// Spatial CIELAB (S-CIELAB; X. Zhang and B. A. Wandell, "A spatial extension of CIELAB for digital
// color image reproduction", 1996): the CIELAB colour difference of two images after each is
// blurred as the eye blurs it at a viewing distance, luminance little and the two colour-opponent
// channels much more. Where Butteraugli (engine/butteraugli_model.h) weighs colour lightly,
// S-CIELAB sees a blotch or tint of colour over an area as the difference between the two colours;
// a fringe one pixel wide, or fine grain, it blurs away as the eye does from afar.
// (bench/RESULTS.md, "Colour", measures the change with it.)
#pragma once

#include <torch/types.h>

namespace cloak {

// The difference map (H,W), in CIELAB Delta E 1976 units, of `distorted` against `reference`,
// both (1,C,H,W) sRGB values in [0,1] (gray is compared as RGB), seen at `pixels_per_degree`.
// Uniform images give their plain CIELAB difference. Differentiable in `distorted`.
torch::Tensor scielab_difference(const torch::Tensor& reference, const torch::Tensor& distorted,
                                 double pixels_per_degree);

}  // namespace cloak
