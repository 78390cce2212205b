// The batch manifest reader: any manifest and journal give a checked manifest or a cloak::Error,
// and a checked manifest can be read the way `cloak batch` and `cloak batch status` read it. The
// input is the manifest's bytes, then (after the first NUL, if any) its journal's text.
#include <algorithm>

#include "cloak/core/error.h"
#include "cloak/pipeline/batch_manifest.h"
#include "cloak/pipeline/batch_sources.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* nul = std::find(data, data + size, std::uint8_t{0});
  const std::string journal(nul == data + size ? nul : nul + 1, data + size);
  try {
    const auto m = cloak::BatchManifest::parse({data, nul}, journal, "fuzz");
    (void)m.value("version", 1);
    (void)m.value("shard", "");
    (void)m.value("images", std::size_t{0});
    (void)m.value("batch_images", std::size_t{0});
    if (m.contains("batch")) {
      (void)cloak::BatchSources::from_json(m["batch"]["sources"]).describe();
      (void)cloak::batch_difference(m["batch"], m["batch"]);
    }
    for (const auto& [key, e] : m["files"].items()) {
      for (const char* number : {"megapixels", "seconds", "psnr", "shift_jpeg75"})
        (void)e.value(number, 0.0);
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
