// The safetensors and .pth (zip + pickle) readers: any input gives tensors or a cloak::Error.
#include "cloak/core/error.h"
#include "cloak/weights/state_dict.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  try {
    if (size >= 2 && data[0] == 'P' && data[1] == 'K')
      cloak::parse_pth(bytes, "fuzz");
    else
      cloak::parse_safetensors(bytes, "fuzz");
  } catch (const cloak::Error&) {
  }
  return 0;
}
