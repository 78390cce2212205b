// The surrogates the engine-level suites run with, loaded as every front end loads them.
#pragma once

#include <torch/torch.h>

#include <string>

#include "cloak/engine/butteraugli.h"
#include "cloak/io/image_io.h"
#include "cloak/pipeline/protect_file.h"
#include "cloak/pipeline/surrogates.h"
#include "test_support.h"

namespace cloak::test {

// Both encoders from ../shared/models, on two threads.
inline SurrogateOptions test_surrogates() {
  SurrogateOptions o;
  o.models_dir = models_dir();
  o.names = {"taef2_encoder", "taesana_encoder"};
  o.threads = 2;
  return o;
}

// A `size` px square of a real painting, from the top left of its centre third (read from
// ../shared/samples, never copied), 8-bit RGB.
inline Image painting_image(int size, const std::string& name = "monet_water_lilies_1919.jpg") {
  const Image full = read_image(shared_dir() / "samples" / name);
  auto x = image_tensor(full);
  x = x.slice(2, x.size(2) / 3, x.size(2) / 3 + size)
          .slice(3, x.size(3) / 3, x.size(3) / 3 + size)
          .contiguous();
  Image out = full;
  out.format = ImageFormat::Png;
  out.metadata = {};
  out.height = out.width = size;
  out.color.assign(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
  return out;
}

// A copy that is not protection: Gaussian noise (not the noise floor's own random signs) on the
// 8-bit codes of `x`, its size found by bisection so that it is as visible as Butteraugli 3-norm
// `norm3`. What `verify` and `audit` must refuse.
inline torch::Tensor gaussian_noise_as_visible(const torch::Tensor& x, double norm3) {
  torch::manual_seed(11);
  const auto g = torch::randn_like(x);
  auto noisy = [&](double a) { return ((x + a / 255 * g) * 255).round().clamp(0, 255) / 255; };
  double lo = 0, hi = 16;
  for (int i = 0; i < 20; ++i) {
    const double a = (lo + hi) / 2;
    (butteraugli(x, noisy(a)).norm3 < norm3 ? lo : hi) = a;
  }
  return noisy(lo);
}

// `image` as a JPEG at `quality` would leave it, decoded: what an upload does, not protection.
inline Image jpeg_copy(const Image& image, int quality) {
  return decode_image(encode_image(image, "copy.jpg", quality), "copy.jpg");
}

}  // namespace cloak::test
