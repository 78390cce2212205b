#include "cloak/pipeline/batch_manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <regex>
#include <tuple>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"
#include "cloak/pipeline/batch_sources.h"

namespace cloak {

namespace fs = std::filesystem;

namespace {

Error damaged(const std::string& name, const std::string& why) {
  return Error(ErrorKind::Input,
               name + ": batch manifest is damaged (" + why +
                   "); which outputs it wrote cannot be told: redo the batch with --overwrite, "
                   "or start it in a new output folder");
}

void check_entry(const std::string& name, const std::string& key, const nlohmann::json& e) {
  if (!e.is_object()) throw damaged(name, "entry \"" + key + "\" is not an object");
  static const char* kTextFields[] = {"status",        "input_sha256",   "output",
                                      "output_sha256", "pending_sha256", "error"};
  for (const char* field : kTextFields)
    if (e.contains(field) && !e[field].is_string())
      throw damaged(name, "entry \"" + key + "\": " + field + " is not text");
  for (const char* field : {"megapixels", "seconds", "psnr", "shift_jpeg75", "floor_jpeg75"})
    if (e.contains(field) && !e[field].is_number())
      throw damaged(name, "entry \"" + key + "\": " + field + " is not a number");
  if (e.contains("settings") && !e["settings"].is_object())
    throw damaged(name, "entry \"" + key + "\": settings is not an object");
}

nlohmann::json parse_whole(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  nlohmann::json data = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (data.is_discarded()) throw damaged(name, "not valid JSON");
  if (!data.is_object() || !data.contains("files") || !data["files"].is_object())
    throw damaged(name, "no \"files\" object");
  for (const auto& [key, e] : data["files"].items()) check_entry(name, key, e);
  for (const char* field : {"version", "images", "batch_images"})
    if (data.contains(field) && !data[field].is_number_unsigned())
      throw damaged(name, std::string(field) + " is not a count");
  if (data.contains("shard") && !data["shard"].is_string())
    throw damaged(name, "shard is not text");
  if (data.contains("batch")) {
    const auto& b = data["batch"];
    if (!b.is_object() || !b.contains("shards") || !b["shards"].is_number_unsigned() ||
        !b.contains("settings") || !b["settings"].is_object() || !b.contains("sources"))
      throw damaged(name, "the batch is not recorded as sources, shards and settings");
    try {
      BatchSources::from_json(b["sources"]);
    } catch (const Error& e) {
      throw damaged(name, e.what());
    }
  }
  return data;
}

// Folds a journal's lines into `data`; a last line without its newline was cut short by a crash.
void fold_journal(const std::string& text, nlohmann::json& data, const std::string& name) {
  std::size_t line = 0;
  for (std::size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
    ++line;
    const auto j = nlohmann::json::parse(text.begin() + at, text.begin() + end, nullptr, false);
    if (!j.is_object() || !j.contains("key") || !j["key"].is_string() || !j.contains("entry"))
      throw damaged(name + ".journal", "line " + std::to_string(line) + " is not an entry");
    check_entry(name + ".journal", j["key"], j["entry"]);
    data["files"][j["key"].get<std::string>()] = j["entry"];
  }
}

std::string read_text(int fd) {
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

std::string dump(const nlohmann::json& j, int indent = -1) {
  // Keys and messages are printable already; a byte that slipped through must not stop a batch.
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

BatchManifest::BatchManifest(fs::path file, bool resume)
    : file_(std::move(file)),
      journal_(file_.string() + ".journal"),
      lock_(file_.string() + ".lock") {
  const bool exists = fs::exists(file_);
  if (exists && !resume)
    throw Error(ErrorKind::Usage, file_.parent_path().string() +
                                      ": holds an earlier batch; pass --resume to continue it");
  journal_fd_ = open_plain_file(journal_, O_RDWR | O_CREAT | O_APPEND, "batch manifest's journal");
  if (!exists) return;
  try {
    const auto bytes = read_file(file_);
    whole_bytes_ = bytes.size();
    data_ = parse_whole(bytes, file_.string());
    fold_journal(read_text(journal_fd_), data_, file_.string());
  } catch (...) {
    ::close(journal_fd_);
    throw;
  }
}

BatchManifest::~BatchManifest() {
  try {
    write_whole();
  } catch (const Error&) {
    // The journal still holds every change: the next run or status view folds it in.
  }
  ::close(journal_fd_);
}

nlohmann::json& BatchManifest::entry(const std::string& key) {
  auto& e = data_["files"][key];
  if (e.is_null()) e = nlohmann::json::object();
  return e;
}

void BatchManifest::set_plan(const nlohmann::json& batch, const std::string& shard,
                             std::size_t shard_images, std::size_t batch_images) {
  data_["version"] = 3;
  data_["batch"] = batch;
  data_["shard"] = shard;
  data_["images"] = shard_images;
  data_["batch_images"] = batch_images;
  write_whole();
}

void BatchManifest::write_whole() {
  const std::string text = dump(data_, 1) + "\n";
  write_file_atomic(file_, std::vector<std::uint8_t>(text.begin(), text.end()), true);
  whole_bytes_ = text.size();
  // The manifest now holds every change: the journal starts again (replaying it would only
  // repeat them, so a crash between the two loses nothing).
  if (::ftruncate(journal_fd_, 0) == 0) journal_bytes_ = 0;
}

void BatchManifest::save_entry(const std::string& key) {
  if (journal_bytes_ > std::max<std::uint64_t>(whole_bytes_, 1 << 20)) {
    write_whole();
    return;
  }
  const std::string lines = dump({{"key", key}, {"entry", data_["files"][key]}}) + "\n";
  try {
    write_all(journal_fd_, lines.data(), lines.size(), journal_);
    if (::fdatasync(journal_fd_) != 0) throw write_failed(journal_, errno);
  } catch (const Error&) {
    // No half line is left for the next append to run into.
    [[maybe_unused]] const int cut = ::ftruncate(journal_fd_, static_cast<off_t>(journal_bytes_));
    throw;
  }
  journal_bytes_ += lines.size();
}

nlohmann::json BatchManifest::read(const fs::path& file) {
  std::string journal;
  const int fd =
      ::open((file.string() + ".journal").c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    journal = read_text(fd);
    ::close(fd);
  }
  return parse(read_file(file), journal, file.string());
}

nlohmann::json BatchManifest::parse(const std::vector<std::uint8_t>& whole,
                                    const std::string& journal, const std::string& name) {
  auto data = parse_whole(whole, name);
  fold_journal(journal, data, name);
  return data;
}

std::vector<ManifestFile> find_manifests(const fs::path& folder) {
  // Up to a million shards: a stray name with more digits is not one of Cloak's.
  static const std::regex sharded(R"(cloak-manifest\.(\d{1,6})-of-(\d{1,6})\.json)");
  std::vector<ManifestFile> found;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::smatch m;
    if (name == "cloak-manifest.json")
      found.push_back({it->path(), 0, 1});
    else if (std::regex_match(name, m, sharded) && std::stoull(m[1]) < std::stoull(m[2]))
      found.push_back({it->path(), std::stoull(m[1]), std::stoull(m[2])});
  }
  if (ec)
    throw Error(ErrorKind::Input,
                printable(folder.string()) + ": cannot read the folder: " + ec.message());
  std::sort(found.begin(), found.end(), [](const ManifestFile& a, const ManifestFile& b) {
    return std::tie(a.count, a.index) < std::tie(b.count, b.index);
  });
  return found;
}

std::string batch_difference(const nlohmann::json& recorded, const nlohmann::json& wanted) {
  std::vector<std::string> why;
  const auto was = BatchSources::from_json(recorded["sources"]);
  const auto now = BatchSources::from_json(wanted["sources"]);
  if (!was.same_as(now))
    why.push_back("it protects " + was.describe() + ", this run " + now.describe());
  const auto split = [](const nlohmann::json& shards) {
    return shards == 1 ? std::string("in one piece") : "in " + shards.dump() + " shards";
  };
  if (recorded["shards"] != wanted["shards"])
    why.push_back("it is split " + split(recorded["shards"]) + ", this run " +
                  split(wanted["shards"]));
  std::vector<std::string> settings;
  const auto& a = recorded["settings"];
  const auto& b = wanted["settings"];
  for (const auto& [name, value] : a.items())
    if (!b.contains(name) || b[name] != value)
      settings.push_back(name + " " + value.dump() + " there, " +
                         (b.contains(name) ? b[name].dump() : "none") + " here");
  for (const auto& [name, value] : b.items())
    if (!a.contains(name)) settings.push_back(name + " none there, " + value.dump() + " here");
  if (!settings.empty()) {
    std::string text = "its settings differ (";
    for (std::size_t i = 0; i < settings.size(); ++i) text += (i ? ", " : "") + settings[i];
    why.push_back(text + ")");
  }
  std::string text;
  for (std::size_t i = 0; i < why.size(); ++i) text += (i ? "; " : "") + why[i];
  return text;
}

}  // namespace cloak
