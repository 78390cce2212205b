// The real codecs (OpenCV's libjpeg and resamplers) an upload goes through, as round trips of
// tensors: what the reports attack and what the visibility budget compares against.
#pragma once

#include <torch/types.h>

namespace cloak {

// Real codec round trips of a (1,C,H,W) image, as 8-bit.
torch::Tensor opencv_jpeg(const torch::Tensor& image, int quality);
torch::Tensor opencv_resize(const torch::Tensor& image, double factor);
// To h x w: area averaging when shrinking, bicubic when enlarging.
torch::Tensor opencv_resize_to(const torch::Tensor& image, int64_t h, int64_t w);
torch::Tensor opencv_blur(const torch::Tensor& image, double sigma);

}  // namespace cloak
