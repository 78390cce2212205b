// EXIF, IPTC, XMP and ICC through exiv2, so a protected copy keeps the artist's credits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloak/core/image.h"

namespace cloak {

struct ImageHeader {
  int width = 0, height = 0;  // 0 where the header does not say
  int orientation = 1;        // EXIF orientation, 1 = upright
};

// Reads the header and the metadata of an encoded image without decoding its pixels. The ICC
// profile is read only when `with_icc` (PNG's comes from libpng). Throws cloak::Error (Input).
ImageHeader read_metadata(const std::vector<std::uint8_t>& encoded, const std::string& name,
                          bool with_icc, ImageMetadata& metadata);

// Returns `encoded` with the metadata embedded, EXIF orientation reset to upright (the pixels are
// already upright) and, when `with_icc`, the ICC profile. Throws cloak::Error (Output).
std::vector<std::uint8_t> embed_metadata(const std::vector<std::uint8_t>& encoded,
                                         const ImageMetadata& metadata, bool with_icc,
                                         const std::string& name);

// Sets XMP properties ("Xmp.prefix.Name" -> text) in the metadata's XMP packet, creating it if
// needed; other properties are kept.
void set_xmp_properties(ImageMetadata& metadata,
                        const std::vector<std::pair<std::string, std::string>>& properties);

}  // namespace cloak
