// Where a batch stands, read from every shard's manifest in its output folder: the view an
// operator of a cluster job looks at. Reading it never changes a manifest or takes a lock.
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
  std::string shard;                     // "K/N"; "0/1" for an unsharded batch
  bool started = false;                  // it has a manifest
  std::optional<LockHolder> running_on;  // the process working on it now
  bool interrupted = false;              // work left half-done by a process that is gone: resume it
  ImageCounts images;                    // for a shard not started: pending is its share when known
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
};

// Reads `folder`'s manifests ("cloak-manifest.json", "cloak-manifest.K-of-N.json"). Throws
// cloak::Error: Input naming a damaged manifest, or the folder when it holds none.
BatchStatus read_batch_status(const std::filesystem::path& folder);

nlohmann::json to_json(const BatchStatus& status);

}  // namespace cloak
