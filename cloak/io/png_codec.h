// PNG through libpng: 8/16-bit, gray, gray+alpha, RGB, RGBA, palette, interlaced; iCCP and text.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cloak/core/image.h"

namespace cloak {

// Decodes to an 8U or 16U matrix with 1-4 channels in file order (G, GA, RGB, RGBA); palette and
// low-depth gray are expanded, tRNS becomes alpha. Fills `icc` and `text`. An image of more than
// `max_pixels` is refused before its pixels are allocated. Throws cloak::Error.
cv::Mat decode_png(const std::vector<std::uint8_t>& bytes, const std::string& name,
                   ImageMetadata& metadata, std::int64_t max_pixels);

// Encodes an 8U or 16U matrix with 1-4 channels (G, GA, RGB, RGBA) with the ICC profile and text.
std::vector<std::uint8_t> encode_png(const cv::Mat& pixels, const ImageMetadata& metadata,
                                     const std::string& name);

}  // namespace cloak
