// The ICC profile of a WebP file (its RIFF "ICCP" chunk). exiv2 0.27 writes this chunk under the
// wrong name, so Cloak reads and writes it itself.
#pragma once

#include <cstdint>
#include <vector>

namespace cloak {

std::vector<std::uint8_t> webp_icc_profile(const std::vector<std::uint8_t>& webp);

// Returns `webp` with `icc` as its ICCP chunk, adding the extended-format VP8X header if missing.
std::vector<std::uint8_t> webp_with_icc_profile(const std::vector<std::uint8_t>& webp,
                                                const std::vector<std::uint8_t>& icc, int width,
                                                int height, bool has_alpha);

}  // namespace cloak
