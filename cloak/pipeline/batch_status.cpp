#include "cloak/pipeline/batch_status.h"

#include <algorithm>
#include <map>
#include <set>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/batch_manifest.h"
#include "cloak/pipeline/batch_shard.h"
#include "cloak/pipeline/batch_sources.h"
#include "cloak/weights/sha256.h"

namespace cloak {

namespace fs = std::filesystem;

namespace {

// What the shards' manifests add up to beyond the counts.
struct Sums {
  double psnr = 0, shift = 0, floor = 0;
  std::size_t psnr_n = 0, shift_n = 0, floor_n = 0;
  std::size_t planned = 0, batch_images = 0;  // of one N's shards
};

// The batch's images now, by key, with their files: known only when the manifests record their
// sources and those can be listed here.
using Current = std::optional<std::map<std::string, fs::path>>;

ShardStatus read_shard(const nlohmann::json& m, const fs::path& manifest_file, const Shard& shard,
                       const Current& current, const nlohmann::json& settings, BatchStatus& status,
                       Sums& sums) {
  ShardStatus s;
  s.shard = shard.name();
  s.started = true;
  s.running_on = live_holder(manifest_file.string() + ".lock");
  for (const auto& [key, e] : m["files"].items()) {
    if (current && !current->count(key)) {
      status.missing.push_back(key);
      continue;
    }
    const std::string state = e.value("status", "");
    // An older manifest's entries carry their settings: done under others is not done.
    const bool same_settings =
        !e.contains("settings") || settings.is_null() || e["settings"] == settings;
    if (state == "done" && same_settings) {
      ++s.images.done;
      status.megapixels += e.value("megapixels", 0.0);
      status.seconds += e.value("seconds", 0.0);
      if (e.contains("psnr")) sums.psnr += e["psnr"].get<double>(), ++sums.psnr_n;
      if (e.contains("shift_jpeg75")) sums.shift += e["shift_jpeg75"].get<double>(), ++sums.shift_n;
      if (e.contains("floor_jpeg75")) sums.floor += e["floor_jpeg75"].get<double>(), ++sums.floor_n;
    } else if (state == "failed") {
      ++s.images.failed;
      status.failed.push_back({key, e.value("error", "")});
    } else if (s.running_on && (state == "started" || state == "writing")) {
      ++s.images.running;
    } else if (state == "started" || state == "writing") {
      s.interrupted = true;
    }
  }
  const std::size_t known = s.images.done + s.images.failed + s.images.running;
  if (current) {
    std::size_t planned = 0;
    for (const auto& [key, file] : *current) {
      if (shard_of(key, shard.count) != shard.index) continue;
      ++planned;
      if (!m["files"].contains(key)) status.added.push_back(key);
    }
    s.images.pending = planned - std::min(planned, known);
    s.interrupted = s.interrupted && s.images.pending;
  } else {
    const std::size_t planned = std::max<std::size_t>(m.value("images", known), known);
    s.images.pending = planned - known;
    sums.planned += planned;
    sums.batch_images = std::max<std::size_t>(sums.batch_images, m.value("batch_images", 0));
  }
  return s;
}

// Missing images found again among the added ones: the same bytes under another name.
void find_renamed(const std::map<std::string, fs::path>& current,
                  const std::map<std::string, std::string>& missing_sha, BatchStatus& status) {
  if (missing_sha.empty() || status.added.empty()) return;
  std::map<std::string, std::string> missing_of_sha;
  for (const auto& [key, sha] : missing_sha) missing_of_sha[sha] = key;
  std::vector<std::string> added;
  for (const auto& key : status.added) {
    std::string sha;
    try {
      sha = sha256_hex(read_file(current.at(key)));
    } catch (const Error&) {
    }
    const auto it = missing_of_sha.find(sha);
    if (it == missing_of_sha.end()) {
      added.push_back(key);
      continue;
    }
    status.renamed.push_back({it->second, key});
    status.missing.erase(std::find(status.missing.begin(), status.missing.end(), it->second));
    missing_of_sha.erase(it);
  }
  status.added = added;
}

}  // namespace

BatchStatus read_batch_status(const fs::path& folder) {
  BatchStatus status;
  status.folder = folder;
  const auto files = find_manifests(folder);
  if (files.empty())
    throw Error(ErrorKind::Input,
                printable(folder.string()) + ": holds no cloak batch (no cloak-manifest*.json)");
  // N -> K -> the manifest's file and what it holds (null when damaged).
  std::map<std::uint64_t, std::map<std::uint64_t, std::pair<fs::path, nlohmann::json>>> found;
  nlohmann::json batch;  // as the manifests record it (null for an older cloak's)
  for (const auto& f : files) {
    try {
      auto m = BatchManifest::read(f.file);
      if (m.contains("batch") && batch.is_null()) batch = m["batch"];
      found[f.count][f.index] = {f.file, std::move(m)};
    } catch (const Error& e) {
      status.unreadable.push_back(e.what());
      found[f.count][f.index] = {f.file, nullptr};
    }
  }
  Current current;
  if (!batch.is_null()) {
    try {
      current.emplace();
      for (const auto& in : list_inputs(BatchSources::from_json(batch["sources"]), folder))
        (*current)[in.key] = in.file;
    } catch (const std::exception& e) {
      current.reset();
      status.unreadable.push_back(printable(e.what()) +
                                  " (the counts below are what the manifests recorded)");
    }
  }
  const nlohmann::json settings = batch.is_null() ? nlohmann::json() : batch["settings"];
  std::map<std::string, std::string> missing_sha;
  Sums sums;
  for (const auto& [count, shards] : found) {
    sums.planned = sums.batch_images = 0;
    std::vector<std::size_t> not_started;  // their places in status.shards
    for (std::uint64_t k = 0; k < count; ++k) {
      const Shard shard{k, count};
      const auto m = shards.find(k);
      if (m == shards.end()) {
        ShardStatus s;
        s.shard = shard.name();
        if (current)
          for (const auto& [key, file] : *current) s.images.pending += shard_of(key, count) == k;
        else
          not_started.push_back(status.shards.size());
        status.shards.push_back(s);
      } else if (m->second.second.is_null()) {
        ShardStatus s;
        s.shard = shard.name();
        s.started = s.damaged = true;
        status.shards.push_back(s);
      } else {
        const auto& [file, manifest] = m->second;
        const auto missing_before = status.missing.size();
        status.shards.push_back(read_shard(manifest, file, shard, current, settings, status, sums));
        for (auto i = missing_before; i < status.missing.size(); ++i)
          missing_sha[status.missing[i]] =
              manifest["files"][status.missing[i]].value("input_sha256", "");
      }
    }
    // Without the sources: the images of the shards not started yet, shared out evenly (the
    // manifests know the total).
    const std::size_t left =
        sums.batch_images > sums.planned ? sums.batch_images - sums.planned : 0;
    for (std::size_t i = 0; i < not_started.size(); ++i)
      status.shards[not_started[i]].images.pending =
          left / not_started.size() + (i < left % not_started.size());
  }
  if (current) find_renamed(*current, missing_sha, status);
  for (const auto& s : status.shards) {
    status.images.done += s.images.done;
    status.images.failed += s.images.failed;
    status.images.running += s.images.running;
    status.images.pending += s.images.pending;
  }
  if (sums.psnr_n) status.mean_psnr = sums.psnr / sums.psnr_n;
  if (sums.shift_n) status.mean_shift_jpeg75 = sums.shift / sums.shift_n;
  if (sums.floor_n) status.mean_floor_jpeg75 = sums.floor / sums.floor_n;
  return status;
}

nlohmann::json to_json(const BatchStatus& st) {
  const auto counts = [](const ImageCounts& c) {
    return nlohmann::json{
        {"done", c.done}, {"failed", c.failed}, {"running", c.running}, {"pending", c.pending}};
  };
  nlohmann::json j = {{"folder", printable(st.folder.string())},
                      {"done", st.done()},
                      {"images", counts(st.images)},
                      {"megapixels", st.megapixels},
                      {"seconds", st.seconds},
                      {"shards", nlohmann::json::array()},
                      {"failed", nlohmann::json::array()},
                      {"added", st.added},
                      {"missing", st.missing},
                      {"renamed", nlohmann::json::array()},
                      {"unreadable", st.unreadable}};
  j["mean_psnr"] = st.mean_psnr ? nlohmann::json(*st.mean_psnr) : nlohmann::json();
  j["mean_shift_jpeg75"] =
      st.mean_shift_jpeg75 ? nlohmann::json(*st.mean_shift_jpeg75) : nlohmann::json();
  j["mean_floor_jpeg75"] =
      st.mean_floor_jpeg75 ? nlohmann::json(*st.mean_floor_jpeg75) : nlohmann::json();
  for (const auto& s : st.shards) {
    nlohmann::json sj = {{"shard", s.shard},
                         {"started", s.started},
                         {"damaged", s.damaged},
                         {"interrupted", s.interrupted},
                         {"images", counts(s.images)}};
    sj["running_on"] = s.running_on ? nlohmann::json(s.running_on->describe()) : nlohmann::json();
    j["shards"].push_back(sj);
  }
  for (const auto& f : st.failed) j["failed"].push_back({{"image", f.key}, {"error", f.error}});
  for (const auto& [was, now] : st.renamed) j["renamed"].push_back({{"was", was}, {"now", now}});
  return j;
}

}  // namespace cloak
