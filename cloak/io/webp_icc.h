// The ICC profile of a WebP file (its "ICCP" chunk), read and written with libwebpmux: exiv2 0.27
// writes this chunk under the wrong name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cloak {

// The profile, or nothing when the file has none or is not a WebP container libwebpmux accepts.
std::vector<std::uint8_t> webp_icc_profile(const std::vector<std::uint8_t>& webp);

// Returns `webp` with `icc` as its ICCP chunk (the extended-format header is added as needed).
// Throws cloak::Error (Output) naming `name` when libwebpmux refuses.
std::vector<std::uint8_t> webp_with_icc_profile(const std::vector<std::uint8_t>& webp,
                                                const std::vector<std::uint8_t>& icc,
                                                const std::string& name);

}  // namespace cloak
