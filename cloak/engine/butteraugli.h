// How visible a change is to a person: libjxl's Butteraugli distance (about 1 is the threshold of
// visibility at normal viewing distance), and the yardstick Cloak's strengths promise against:
// what a JPEG of the same image at a given quality already does to it.
#pragma once

#include <torch/types.h>

#include <optional>

namespace cloak {

struct Visibility {
  double max = 0;         // the most visible spot
  double norm3 = 0;       // the 3-norm over the image: how visible the change is overall
  torch::Tensor distmap;  // (H,W) float32, the distance at each pixel, when asked for
};

// Butteraugli of `distorted` against `reference`, both (1,C,H,W) sRGB values in [0,1] (gray is
// compared as RGB), on 16-bit code values, so 8- and 16-bit images are compared exactly.
Visibility butteraugli(const torch::Tensor& reference, const torch::Tensor& distorted,
                       bool with_distmap = false);

// Butteraugli of a JPEG at `quality` (libjpeg, 4:2:0, as an upload gets it) against `image`.
Visibility jpeg_visibility(const torch::Tensor& image, int quality, bool with_distmap = false);

// The JPEG quality that changes `image` at least as visibly as `v` does, in max and 3-norm both:
// the highest such quality in [from, 100], nothing when even a JPEG at `from` is less visible.
std::optional<int> jpeg_equivalent(const torch::Tensor& image, const Visibility& v, int from = 10);

}  // namespace cloak
