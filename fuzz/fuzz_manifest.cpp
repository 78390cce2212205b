// The batch manifest parser: any input gives a checked manifest or a cloak::Error, and a checked
// manifest can be read the way `cloak batch` reads it.
#include "cloak/core/error.h"
#include "cloak/pipeline/batch_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto m = cloak::BatchManifest::parse({data, data + size}, "fuzz");
    for (const auto& [key, e] : m["files"].items()) {
      (void)e.value("status", "");
      (void)e.value("input_sha256", "");
      (void)e.value("output_sha256", "");
      (void)e.value("pending_sha256", "");
      if (e.contains("settings")) (void)e["settings"].dump();
    }
  } catch (const cloak::Error&) {
  }
  return 0;
}
