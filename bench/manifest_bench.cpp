// Bytes a batch's manifest costs the disk: the save pattern of `cloak batch` (a start, a write
// and a finish an image, the entry's fields as cli/batch_cmd.cpp sets them) over N images of one
// shard, measured by the kernel's count of this process's written bytes (/proc/self/io, wchar).
// Usage: cloak_manifest_bench [IMAGES]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "cloak/pipeline/batch_manifest.h"

namespace fs = std::filesystem;

namespace {

unsigned long long written_bytes() {
  std::ifstream io("/proc/self/io");
  std::string field;
  unsigned long long value = 0;
  while (io >> field >> value)
    if (field == "wchar:") return value;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int images = argc > 1 ? std::atoi(argv[1]) : 10000;
  const fs::path dir =
      fs::temp_directory_path() / ("cloak-manifest-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const nlohmann::json settings = {{"strength", "medium"}, {"mode", "cloak"},
                                   {"preset", "fast"},     {"seed", 0},
                                   {"quality", 92},        {"optout_tag", true}};
  const std::string sha(64, 'a');
  const auto before = written_bytes();
  {
    cloak::BatchManifest manifest(dir / "cloak-manifest.json", false);
    const nlohmann::json batch = {
        {"sources", {{"kind", "folder"}, {"path", dir.string()}, {"base", dir.string()}}},
        {"shards", 1},
        {"settings", settings}};
    manifest.set_plan(batch, "0/1", images, images);
    for (int i = 0; i < images; ++i) {
      char key[64];
      std::snprintf(key, sizeof key, "2021/commissions/IMG_%05d.png", i);
      auto& e = manifest.entry(key);
      e["status"] = "started";
      e["input_sha256"] = sha;
      manifest.save_entry(key);
      e["status"] = "writing";
      e["output"] = key;
      e["pending_sha256"] = sha;
      manifest.save_entry(key);
      e["status"] = "done";
      e["output_sha256"] = sha;
      e.erase("pending_sha256");
      e["megapixels"] = 1.048576;
      e["seconds"] = 61.25;
      e["psnr"] = 41.3;
      e["shift_jpeg75"] = 0.212;
      e["floor_jpeg75"] = 0.181;
      manifest.save_entry(key);
    }
  }
  const auto bytes = written_bytes() - before;
  const auto final_size = fs::file_size(dir / "cloak-manifest.json");
  fs::remove_all(dir);
  std::printf(
      "%d images: %.1f MB written for the manifest (%.0f bytes an image), final size %.2f MB\n",
      images, bytes / 1e6, static_cast<double>(bytes) / images, final_size / 1e6);
  return 0;
}
