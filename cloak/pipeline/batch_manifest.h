// The record `cloak batch` keeps in its output folder, so that an interrupted batch resumes without
// redoing or clobbering anything. It knows its batch ("batch": the sources and how keys are
// formed, the number of shards and the settings) and, per input (keyed by its path relative to
// the batch's base), the input's SHA-256, the status and the SHA-256 of the output this batch
// wrote, and what the status view totals (megapixels, seconds, PSNR, shift). A sharded batch keeps
// one manifest per shard ("cloak-manifest.K-of-N.json").
//
// Saving scales with the work, not the catalogue: the manifest (one JSON document) is written
// whole only when a run starts and ends and when its journal ("....json.journal", one JSON line
// per change of an entry) has grown past it; every other save appends the entry that changed.
// Readers fold the journal into the manifest; a line cut short by a crash is ignored.
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
  // Writes the manifest whole and empties the journal (when it can: a failure is left for the
  // next run, which reads the journal).
  ~BatchManifest();
  BatchManifest(const BatchManifest&) = delete;
  BatchManifest& operator=(const BatchManifest&) = delete;

  // The entry of one input (an empty object when new), to be changed and then saved with
  // save_entry. Fields, all
  // optional: "status" (started, writing, done, failed), "input_sha256", "output",
  // "output_sha256" (what this batch wrote there), "pending_sha256" (what it is writing there
  // now), "error"; "settings" in manifests of cloak before the batch recorded its own.
  nlohmann::json& entry(const std::string& key);
  // The format's version: 3 since the manifest records its batch; 2 since shards are chosen by
  // the mixed hash (batch_shard.h); 1 before.
  int version() const { return data_.value("version", 1); }
  // This run's batch and plan: shard "K/N", the images it is to protect and those of the batch;
  // then the whole manifest is written.
  void set_plan(const nlohmann::json& batch, const std::string& shard, std::size_t shard_images,
                std::size_t batch_images);
  // Records the entry of `key` as it is now (atomically: a crash loses at most the change being
  // written). Throws cloak::Error (Output, or NoSpace) naming the file.
  void save_entry(const std::string& key);

  // The manifest `file` with its journal folded in, checked; throws cloak::Error (Input) naming
  // the file when it is damaged.
  static nlohmann::json read(const std::filesystem::path& file);
  // The same from a manifest's bytes and its journal's text; `name` names it in errors.
  static nlohmann::json parse(const std::vector<std::uint8_t>& whole, const std::string& journal,
                              const std::string& name);

 private:
  void write_whole();
  std::filesystem::path file_, journal_;
  BatchLock lock_;
  nlohmann::json data_ = {{"version", 3}, {"files", nlohmann::json::object()}};
  int journal_fd_ = -1;
  std::uint64_t journal_bytes_ = 0, whole_bytes_ = 0;
};

// The shard manifests in `folder`: cloak-manifest.json (shard 0 of 1) and
// cloak-manifest.K-of-N.json. Throws cloak::Error (Input) when the folder cannot be read.
struct ManifestFile {
  std::filesystem::path file;
  std::uint64_t index = 0, count = 1;
};
std::vector<ManifestFile> find_manifests(const std::filesystem::path& folder);

// Why the batch a manifest records (`recorded`) is not the one a run asks for (`wanted`), in
// words; "" when it is the same batch.
std::string batch_difference(const nlohmann::json& recorded, const nlohmann::json& wanted);

}  // namespace cloak
