// The decoded image every layer above passes around: plain float planes and the metadata that must
// survive. No codec and no libtorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cloak {

enum class ImageFormat { Png, Jpeg, Webp, Tiff, Bmp };

struct PngTextChunk {
  std::string key, text;
  bool compressed = false;
};

// What must survive untouched from input to output besides the pixels.
struct ImageMetadata {
  std::vector<std::uint8_t> exif;      // EXIF as a TIFF-structured block (what exiv2 encodes)
  std::vector<std::uint8_t> iptc;      // IPTC IIM records
  std::string xmp;                     // XMP packet
  std::vector<std::uint8_t> icc;       // ICC colour profile
  std::vector<PngTextChunk> png_text;  // PNG text chunks other than EXIF/IPTC/XMP carriers
};

struct Image {
  int width = 0, height = 0;
  int color_channels = 3;    // 1 (gray) or 3 (RGB)
  std::vector<float> color;  // planar CHW, sRGB-encoded values in [0,1], upright (EXIF applied)
  std::vector<float> alpha;  // H*W values in [0,1]; empty when the image has no alpha
  int bit_depth = 8;         // 8 or 16 bits per sample
  ImageFormat format = ImageFormat::Png;
  ImageMetadata metadata;
};

}  // namespace cloak
