// Pictures for people to look at: a downscaled RGB copy of an image, and such tensors back as
// images to encode. Not for measuring.
#pragma once

#include <torch/types.h>

#include "cloak/core/image.h"

namespace cloak {

// `image` at most `size` px a side (area resize), RGB, (1,3,h,w) in [0,1].
torch::Tensor preview_tensor(const Image& image, int size);

// An 8-bit RGB image of `rgb` (1,3,h,w) in [0,1], without metadata.
Image picture(const torch::Tensor& rgb);

}  // namespace cloak
