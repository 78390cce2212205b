// Pictures for people to look at: a downscaled RGB copy of an image, and such tensors back as
// images to encode. Not for measuring.
#pragma once

#include <torch/types.h>

#include "cloak/core/image.h"

namespace cloak {

// `image` at most `size` px a side (area resize), RGB, (1,3,h,w) in [0,1].
torch::Tensor preview_tensor(const Image& image, int size);

// Where a change is visible, for an artist to judge before posting: `image` (1,C,H,W) dimmed to
// gray, with the Butteraugli distance map (H,W) laid over it: clear below 0.5, green to yellow up
// to 1 (the threshold of visibility), yellow to red up to 2 and beyond. (1,3,H,W) in [0,1].
torch::Tensor visibility_heatmap(const torch::Tensor& image, const torch::Tensor& distmap);

// An 8-bit RGB image of `rgb` (1,3,h,w) in [0,1], without metadata.
Image picture(const torch::Tensor& rgb);

}  // namespace cloak
