// Every image decoder through Cloak's own wrapper (format sniffing, completeness checks, exiv2
// metadata, libpng, libjpeg, OpenCV): any input gives an image or a cloak::Error, nothing else.
#include "cloak/core/error.h"
#include "cloak/io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  cloak::ReadOptions limits;
  limits.max_pixels = 1 << 20;  // keep each run fast; the limit logic itself is under test too
  try {
    cloak::decode_image(bytes, "fuzz", limits);
  } catch (const cloak::Error&) {
  }
  return 0;
}
