#include "cloak/pipeline/batch_manifest.h"

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"

namespace cloak {

namespace fs = std::filesystem;

BatchManifest::BatchManifest(fs::path file, bool resume)
    : file_(std::move(file)), lock_(file_.string() + ".lock") {
  if (!fs::exists(file_)) return;
  if (!resume)
    throw Error(ErrorKind::Usage, file_.parent_path().string() +
                                      ": holds an earlier batch; pass --resume to continue it");
  data_ = parse(read_file(file_), file_.string());
}

void BatchManifest::set_plan(const std::string& shard, std::size_t shard_images,
                             std::size_t batch_images) {
  data_["version"] = 2;
  data_["shard"] = shard;
  data_["images"] = shard_images;
  data_["batch_images"] = batch_images;
}

void BatchManifest::save() const {
  std::string text = data_.dump(1) + "\n";
  write_file_atomic(file_, std::vector<std::uint8_t>(text.begin(), text.end()), true);
}

nlohmann::json BatchManifest::parse(const std::vector<std::uint8_t>& bytes,
                                    const std::string& name) {
  const auto damaged = [&](const std::string& why) {
    return Error(ErrorKind::Input,
                 name + ": batch manifest is damaged (" + why + "); move it away to start over");
  };
  nlohmann::json data = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (data.is_discarded()) throw damaged("not valid JSON");
  if (!data.is_object() || !data.contains("files") || !data["files"].is_object())
    throw damaged("no \"files\" object");
  static const char* kTextFields[] = {"status",        "input_sha256",   "output",
                                      "output_sha256", "pending_sha256", "error"};
  for (const auto& [key, e] : data["files"].items()) {
    if (!e.is_object()) throw damaged("entry \"" + key + "\" is not an object");
    for (const char* field : kTextFields)
      if (e.contains(field) && !e[field].is_string())
        throw damaged("entry \"" + key + "\": " + field + " is not text");
    for (const char* field : {"megapixels", "seconds", "psnr", "shift_jpeg75", "floor_jpeg75"})
      if (e.contains(field) && !e[field].is_number())
        throw damaged("entry \"" + key + "\": " + field + " is not a number");
    if (e.contains("settings") && !e["settings"].is_object())
      throw damaged("entry \"" + key + "\": settings is not an object");
  }
  for (const char* field : {"version", "images", "batch_images"})
    if (data.contains(field) && !data[field].is_number_unsigned())
      throw damaged(std::string(field) + " is not a count");
  if (data.contains("shard") && !data["shard"].is_string()) throw damaged("shard is not text");
  return data;
}

}  // namespace cloak
