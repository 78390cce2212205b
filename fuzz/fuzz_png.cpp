// The libpng decoder alone, past the wrapper's checks.
#include "cloak/core/error.h"
#include "cloak/io/png_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  cloak::ImageMetadata metadata;
  try {
    cloak::decode_png(bytes, "fuzz", metadata, 1 << 20);
  } catch (const cloak::Error&) {
  }
  return 0;
}
