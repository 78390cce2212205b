// EXIF/IPTC/XMP/ICC reading through exiv2, then writing the result into a fresh PNG.
#include "cloak/core/error.h"
#include "cloak/io/image_io.h"
#include "cloak/io/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    cloak::ImageMetadata metadata;
    cloak::read_metadata(bytes, "fuzz", true, metadata);
    cloak::Image img;
    img.width = img.height = 8;
    img.color.assign(3 * 64, 0.5f);
    img.metadata = metadata;
    cloak::encode_image(img, "fuzz.png", 95);
  } catch (const cloak::Error&) {
  }
  return 0;
}
