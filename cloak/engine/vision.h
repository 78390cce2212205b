// What the models of vision (engine/butteraugli_model.h, engine/scielab.h) share, and other
// readers of images (the engine, the audit, the pipeline) use.
#pragma once

#include <torch/types.h>

#include <vector>

namespace cloak {

// (1,C,H,W) as RGB: gray (C = 1) expanded to three equal channels, RGB as it is.
torch::Tensor as_rgb(const torch::Tensor& x);

// sRGB values to linear light (IEC 61966-2-1), elementwise.
torch::Tensor srgb_to_linear(const torch::Tensor& v);

// libjxl's Gaussian taps: exp(-i^2 / 2 sigma^2) for |i| <= 2.25 sigma (at least three).
std::vector<float> gauss_taps(double sigma);

// One pass of `taps` (odd count, centred) along `axis` (2: rows, 3: columns) of every channel of
// (1,C,H,W), zero outside the image.
torch::Tensor conv_axis(const torch::Tensor& x, const torch::Tensor& taps, int axis);

// Separable Gaussian blur of every channel of (1,C,H,W) with gauss_taps(sigma), each pass
// renormalised near the borders by the taps that fall inside the image (as libjxl does).
torch::Tensor gauss_blur(const torch::Tensor& x, double sigma);

}  // namespace cloak
