#include "cloak/pipeline/batch_status.h"

#include <algorithm>
#include <map>
#include <regex>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/batch_manifest.h"

namespace cloak {

namespace fs = std::filesystem;

namespace {

// What the shards' manifests add up to beyond the counts.
struct Sums {
  double psnr = 0, shift = 0, floor = 0;
  std::size_t psnr_n = 0, shift_n = 0, floor_n = 0;
  std::size_t planned = 0, batch_images = 0;  // of one N's shards
};

ShardStatus read_shard(const fs::path& manifest_file, const std::string& shard, BatchStatus& status,
                       Sums& sums) {
  const auto m = BatchManifest::parse(read_file(manifest_file), manifest_file.string());
  ShardStatus s;
  s.shard = shard;
  s.started = true;
  s.running_on = live_holder(manifest_file.string() + ".lock");
  for (const auto& [key, e] : m["files"].items()) {
    const std::string state = e.value("status", "");
    if (state == "done") {
      ++s.images.done;
      status.megapixels += e.value("megapixels", 0.0);
      status.seconds += e.value("seconds", 0.0);
      if (e.contains("psnr")) sums.psnr += e["psnr"].get<double>(), ++sums.psnr_n;
      if (e.contains("shift_jpeg75")) sums.shift += e["shift_jpeg75"].get<double>(), ++sums.shift_n;
      if (e.contains("floor_jpeg75")) sums.floor += e["floor_jpeg75"].get<double>(), ++sums.floor_n;
    } else if (state == "failed") {
      ++s.images.failed;
      status.failed.push_back({key, e.value("error", "")});
    } else if (s.running_on) {
      ++s.images.running;  // started or writing
    } else {
      s.interrupted = true;
    }
  }
  const std::size_t known = s.images.done + s.images.failed + s.images.running;
  const std::size_t planned = std::max<std::size_t>(m.value("images", known), known);
  s.images.pending = planned - known;
  sums.planned += planned;
  sums.batch_images = std::max<std::size_t>(sums.batch_images, m.value("batch_images", 0));
  return s;
}

}  // namespace

BatchStatus read_batch_status(const fs::path& folder) {
  BatchStatus status;
  status.folder = folder;
  // N -> the shards found, and the batch's size as their manifests give it.
  std::map<std::uint64_t, std::map<std::uint64_t, fs::path>> found;
  // Up to a million shards: a stray name with more digits is not one of Cloak's.
  const std::regex sharded(R"(cloak-manifest\.(\d{1,6})-of-(\d{1,6})\.json)");
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::smatch m;
    if (name == "cloak-manifest.json")
      found[1][0] = it->path();
    else if (std::regex_match(name, m, sharded) && std::stoull(m[1]) < std::stoull(m[2]))
      found[std::stoull(m[2])][std::stoull(m[1])] = it->path();
  }
  if (ec)
    throw Error(ErrorKind::Input, folder.string() + ": cannot read the folder: " + ec.message());
  if (found.empty())
    throw Error(ErrorKind::Input,
                folder.string() + ": holds no cloak batch (no cloak-manifest*.json)");
  Sums sums;
  for (const auto& [count, shards] : found) {
    sums.planned = sums.batch_images = 0;
    std::vector<std::size_t> not_started;  // their places in status.shards
    for (std::uint64_t k = 0; k < count; ++k) {
      const std::string name = std::to_string(k) + "/" + std::to_string(count);
      const auto file = shards.find(k);
      if (file == shards.end()) {
        not_started.push_back(status.shards.size());
        status.shards.push_back({name, false, std::nullopt, false, {}});
      } else {
        status.shards.push_back(read_shard(file->second, name, status, sums));
      }
    }
    // The images of the shards not started yet, shared out evenly (the manifests know the total).
    const std::size_t left =
        sums.batch_images > sums.planned ? sums.batch_images - sums.planned : 0;
    for (std::size_t i = 0; i < not_started.size(); ++i)
      status.shards[not_started[i]].images.pending =
          left / not_started.size() + (i < left % not_started.size());
  }
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
  nlohmann::json j = {{"folder", st.folder.string()},      {"images", counts(st.images)},
                      {"megapixels", st.megapixels},       {"seconds", st.seconds},
                      {"shards", nlohmann::json::array()}, {"failed", nlohmann::json::array()}};
  j["mean_psnr"] = st.mean_psnr ? nlohmann::json(*st.mean_psnr) : nlohmann::json();
  j["mean_shift_jpeg75"] =
      st.mean_shift_jpeg75 ? nlohmann::json(*st.mean_shift_jpeg75) : nlohmann::json();
  j["mean_floor_jpeg75"] =
      st.mean_floor_jpeg75 ? nlohmann::json(*st.mean_floor_jpeg75) : nlohmann::json();
  for (const auto& s : st.shards) {
    nlohmann::json sj = {{"shard", s.shard},
                         {"started", s.started},
                         {"interrupted", s.interrupted},
                         {"images", counts(s.images)}};
    sj["running_on"] = s.running_on ? nlohmann::json(s.running_on->describe()) : nlohmann::json();
    j["shards"].push_back(sj);
  }
  for (const auto& f : st.failed) j["failed"].push_back({{"image", f.key}, {"error", f.error}});
  return j;
}

}  // namespace cloak
