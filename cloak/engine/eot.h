// Expectation over transformation: what platforms and trainers do to an upload, as differentiable
// tensor operations, so protection is optimised to survive them.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <random>

namespace cloak {

struct Transform {
  enum class Kind { Identity, Jpeg, Resize, NoiseBlur } kind = Kind::Identity;
  int jpeg_quality = 75;
  double scale = 1.0;        // Resize: down by this factor, then back up
  int resize_mode = 0;       // Resize: 0 area, 1 bilinear, 2 bicubic
  double blur_sigma = 0.0;   // NoiseBlur
  double noise_sigma = 0.0;  // NoiseBlur
  std::uint64_t noise_seed = 0;
};

// Draws one transform: identity, JPEG q50-95, resize x0.5-0.9 with a random kernel, or light
// blur plus Gaussian noise.
Transform sample_transform(std::mt19937_64& rng);

// Applies `t` to x (1,C,H,W in [0,1], C = 1 or 3); the output has the input's size. The same
// transform applied twice gives the same result (noise is drawn from `t.noise_seed`).
torch::Tensor apply_transform(const Transform& t, const torch::Tensor& x);

// Differentiable JPEG: YCbCr, 4:2:0 chroma subsampling, 8x8 DCT, quantisation with the standard
// tables scaled for `quality` (libjpeg's formula) and straight-through rounding, then back.
torch::Tensor jpeg_approx(const torch::Tensor& x, int quality);

}  // namespace cloak
