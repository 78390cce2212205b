// The record `cloak batch` keeps in its output folder, so that an interrupted batch resumes without
// redoing or clobbering anything: per input (keyed by its path relative to the batch's base), the
// input's SHA-256, the settings, the status and the SHA-256 of the output this batch wrote, and
// what the status view totals (megapixels, seconds, PSNR, shift). A sharded batch keeps one
// manifest per shard ("cloak-manifest.K-of-N.json"), each saying which shard it is and how many
// images its shard and the whole batch hold.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloak/pipeline/batch_lock.h"

namespace cloak {

class BatchManifest {
 public:
  // Locks `file` for this process (another batch on it is refused, not waited for: BatchLock),
  // then reads it when it exists, which needs `resume`. Throws cloak::Error naming the file.
  BatchManifest(std::filesystem::path file, bool resume);
  BatchManifest(const BatchManifest&) = delete;
  BatchManifest& operator=(const BatchManifest&) = delete;

  // The entry of one input (an empty object when new). Fields, all optional: "status" (started,
  // writing, done, failed), "input_sha256", "settings", "output", "output_sha256" (what this batch
  // wrote there), "pending_sha256" (what it is writing there now), "error".
  nlohmann::json& entry(const std::string& key) {
    auto& e = data_["files"][key];
    if (e.is_null()) e = nlohmann::json::object();
    return e;
  }
  // The format's version: 2 since shards are chosen by the mixed hash (batch_shard.h); 1 before.
  int version() const { return data_.value("version", 1); }
  // This run's plan: shard "K/N", the images it is to protect and those of the whole batch.
  void set_plan(const std::string& shard, std::size_t shard_images, std::size_t batch_images);
  // Writes the manifest atomically.
  void save() const;

  // Parses and checks a manifest's text; throws cloak::Error (Input) naming `name` when it is not
  // one.
  static nlohmann::json parse(const std::vector<std::uint8_t>& bytes, const std::string& name);

 private:
  std::filesystem::path file_;
  BatchLock lock_;
  nlohmann::json data_ = {{"version", 2}, {"files", nlohmann::json::object()}};
};

}  // namespace cloak
