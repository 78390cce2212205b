// Reading and writing image files: codecs, metadata, limits, atomic writes. No libtorch here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cloak/core/image.h"

namespace cloak {

std::string format_name(ImageFormat f);
// The format an extension names (".png", ".JPG", ...), or nothing when Cloak does not write it.
std::optional<ImageFormat> format_from_extension(const std::filesystem::path& file);

struct ReadOptions {
  // Refused from the header, before decoding, when either side or the area is larger. The area
  // limit keeps a protect run within a few GiB (about 0.16 GiB a megapixel).
  int max_side = 16384;
  std::int64_t max_pixels = 4096 * 4096;
};

// Reads PNG (libpng: every colour type and depth, interlaced), JPEG (libjpeg, corrupt data
// refused), WebP, TIFF and BMP (OpenCV), applies EXIF orientation and keeps metadata and the ICC
// profile. Animated and multi-page files, CMYK and files over the limits are refused. Throws
// cloak::Error (Input) naming the file and the problem.
Image read_image(const std::filesystem::path& file, const ReadOptions& options = {});
// The same for a file's bytes held in memory; `file` names it (its extension is checked against
// the content).
Image decode_image(const std::vector<std::uint8_t>& bytes, const std::filesystem::path& file,
                   const ReadOptions& options = {});

// The JPEG quality outputs are written at unless asked otherwise: high enough that the codec
// itself does not wash out the protection.
inline constexpr int kDefaultJpegQuality = 95;

struct WriteOptions {
  int jpeg_quality = kDefaultJpegQuality;
  bool overwrite = false;                      // replace an existing output
  std::optional<std::filesystem::path> input;  // never written over, whatever `overwrite` says
};

// Throws cloak::Error naming `file` when `image` cannot be written there: an extension Cloak does
// not write (Usage), or transparency in a format without alpha (Output).
void check_can_write(const Image& image, const std::filesystem::path& file);

// Encodes for `file` by its extension with metadata embedded (orientation reset to upright); writes
// nothing. 16-bit stays 16-bit where the format can hold it (PNG, TIFF).
std::vector<std::uint8_t> encode_image(const Image& image, const std::filesystem::path& file,
                                       int jpeg_quality);

// encode_image, then an atomic write. Throws cloak::Error (Output, or Usage for an impossible
// request) naming the file.
void write_image(const Image& image, const std::filesystem::path& file,
                 const WriteOptions& options = {});

}  // namespace cloak
