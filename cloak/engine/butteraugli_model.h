// Butteraugli as a differentiable libtorch model: the same distance map that libjxl 0.7 computes
// (engine/butteraugli.h stays the judge of every saved image), written from its algorithm so that
// the optimiser can follow its gradient: opsin dynamics, the XYB-like opponent space, four
// frequency bands, Malta's oriented line filters, masking by the reference's own high-frequency
// activity, and a second pass at half resolution.
#pragma once

#include <torch/types.h>

namespace cloak {

// The distance map (H,W) of `distorted` against `reference`, both (1,C,H,W) sRGB values in [0,1]
// (gray is compared as RGB), at libjxl's settings in engine/butteraugli.cpp (80 nits,
// high-frequency asymmetry 0.8). Differentiable in `distorted`; images under 8 pixels a side give
// zeros.
torch::Tensor butteraugli_model(const torch::Tensor& reference, const torch::Tensor& distorted);

// libjxl's "3-norm" of a distance map: the mean of its 3-, 6- and 12-norms.
torch::Tensor butteraugli_norm3(const torch::Tensor& distmap);

}  // namespace cloak
