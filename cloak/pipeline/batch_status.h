// Where a batch stands, read from every shard's manifest in its output folder and from its
// sources as they are now: the view an operator of a cluster job looks at. Reading it never
// changes a manifest or takes a lock.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloak/pipeline/batch_lock.h"

namespace cloak {

struct ImageCounts {
  std::size_t done = 0, failed = 0, running = 0, pending = 0;
};

struct ShardStatus {
  std::string shard;     // "K/N"; "0/1" for an unsharded batch
  bool started = false;  // it has a manifest
  bool damaged = false;  // its manifest cannot be read (BatchStatus::damaged says why)
  std::optional<LockHolder> running_on;  // the process working on it now
  bool interrupted = false;              // work left half-done by a process that is gone: resume it
  ImageCounts images;                    // for a shard not started: pending is its share
};

struct FailedImage {
  std::string key, error;  // its path in the batch; the one-line error
};

struct BatchStatus {
  std::filesystem::path folder;
  std::vector<ShardStatus> shards;  // by N, then K; shards not started included
  std::vector<FailedImage> failed;
  ImageCounts images;
  double megapixels = 0, seconds = 0;  // over the images done
  // After JPEG q75, the latent shift and the noise floor's (report/noise_floor.h).
  std::optional<double> mean_psnr, mean_shift_jpeg75, mean_floor_jpeg75;
  // Compared with the sources as they are now (when the manifests record them): images added
  // since their shard ran (pending), images the manifests know that are gone (not counted), and
  // those of them found again under another name (same SHA-256): {old key, new key}.
  std::vector<std::string> added, missing;
  std::vector<std::pair<std::string, std::string>> renamed;
  // What could not be read: damaged manifests (one line each), and the sources when they cannot
  // be listed here (the counts are then the manifests' own).
  std::vector<std::string> unreadable;

  // Every image of the batch, as it stands now, has a finished output, and all could be read.
  bool done() const {
    return unreadable.empty() && !images.pending && !images.running && !images.failed;
  }
};

// Reads `folder`'s manifests ("cloak-manifest.json", "cloak-manifest.K-of-N.json") and lists the
// sources they record. Throws cloak::Error (Input) when the folder cannot be read or holds no
// manifest; a damaged manifest is named in `unreadable`, the other shards still counted.
BatchStatus read_batch_status(const std::filesystem::path& folder);

nlohmann::json to_json(const BatchStatus& status);

}  // namespace cloak
