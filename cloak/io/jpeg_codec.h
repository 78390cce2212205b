// JPEG decoding through libjpeg, strictly: what libjpeg only warns about (corrupt or missing data,
// which it would fill with grey) is an error here, and nothing is printed.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cloak {

// Decodes to an 8U matrix, gray (1 channel) or RGB (3 channels, file order). CMYK/YCCK files are
// refused (their colours cannot be shown to the sRGB encoders faithfully). Throws cloak::Error
// (Input) naming the file.
cv::Mat decode_jpeg(const std::vector<std::uint8_t>& bytes, const std::string& name);

}  // namespace cloak
