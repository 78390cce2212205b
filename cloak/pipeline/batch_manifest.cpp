#include "cloak/pipeline/batch_manifest.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "cloak/core/error.h"
#include "cloak/io/file_io.h"

namespace cloak {

namespace fs = std::filesystem;

BatchManifest::BatchManifest(fs::path file, bool resume) : file_(std::move(file)) {
  const fs::path lock = file_.string() + ".lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw Error(ErrorKind::Output, lock.string() + ": cannot create the batch lock file");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    throw Error(ErrorKind::Output, file_.parent_path().string() +
                                       ": another cloak batch is working in this folder; wait "
                                       "for it to finish");
  }
  if (!fs::exists(file_)) return;
  if (!resume) {
    ::close(lock_fd_);
    throw Error(ErrorKind::Usage, file_.parent_path().string() +
                                      ": holds an earlier batch; pass --resume to continue it");
  }
  try {
    data_ = parse(read_file(file_), file_.string());
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

BatchManifest::~BatchManifest() {
  ::close(lock_fd_);
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
    if (e.contains("settings") && !e["settings"].is_object())
      throw damaged("entry \"" + key + "\": settings is not an object");
  }
  return data;
}

}  // namespace cloak
