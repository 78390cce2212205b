#include "cloak/io/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>

#include "cloak/core/error.h"

namespace cloak {

namespace fs = std::filesystem;

namespace {

// Temporaries are named ".NAME.cloak-HOST-PID-XXXXXX": the host and PID tell whether their writer
// still runs (folders may be shared by the machines of a cluster).
constexpr const char* kTempTag = ".cloak-";
// No write takes this long: a temporary this old was left by a writer that died elsewhere.
constexpr auto kAbandoned = std::chrono::hours(1);

// The file's own name is cut short where the whole would pass the filesystem's 255 bytes.
std::string temp_template(const fs::path& file) {
  const std::string tail = kTempTag + host_name() + "-" + std::to_string(getpid()) + "-XXXXXX";
  const std::string name = file.filename().string();
  return "." + name.substr(0, 254 - std::min<std::size_t>(tail.size(), 254)) + tail;
}

}  // namespace

std::string read_first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

std::vector<std::uint8_t> read_file(const fs::path& file) {
  const auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::Input, file.string() + ": " + why);
  };
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) fail(std::string("cannot open: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("is a folder, not a file");
  if (!S_ISREG(st.st_mode)) fail("not a regular file (a pipe, socket or device)");
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (done != bytes.size()) fail("read failed (the file changed or the disk has an error)");
  return bytes;
}

void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  const std::string host = host_name();
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto tag = name.rfind(kTempTag);
    if (name.empty() || name[0] != '.' || tag == std::string::npos) continue;
    // HOST-PID-XXXXXX, the host possibly with dashes of its own.
    const std::string rest = name.substr(tag + std::strlen(kTempTag));
    if (rest.size() < 10 || rest[rest.size() - 7] != '-') continue;
    const std::string writer = rest.substr(0, rest.size() - 7);
    const auto dash = writer.rfind('-');
    if (dash == std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::strtol(writer.c_str() + dash + 1, nullptr, 10));
    const bool dead_here =
        writer.substr(0, dash) == host && pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
    const auto age = fs::file_time_type::clock::now() - fs::last_write_time(it->path(), ec);
    if (dead_here || (!ec && age > kAbandoned)) fs::remove(it->path(), ec);
  }
}

void write_file_atomic(const fs::path& file, const std::vector<std::uint8_t>& bytes,
                       bool overwrite) {
  const auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::Output, file.string() + ": " + why);
  };
  if (!overwrite && fs::exists(file)) fail("already exists (use --overwrite)");
  fs::path dir = file.parent_path().empty() ? "." : file.parent_path();
  remove_stale_temporaries(dir);
  std::string tmpl = (dir / temp_template(file)).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) fail("cannot write to folder " + dir.string() + ": " + std::strerror(errno));
  const std::string tmp = tmpl;
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n == 0 ? ENOSPC : errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(std::string("write failed: ") + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  fchmod(fd, 0644);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(std::string("write failed: ") + std::strerror(err));
  }
  // link() refuses an existing destination, so a concurrent writer can never be clobbered.
  int rc = overwrite ? ::rename(tmp.c_str(), file.c_str()) : ::link(tmp.c_str(), file.c_str());
  int err = errno;
  if (!overwrite || rc != 0) ::unlink(tmp.c_str());
  if (rc != 0)
    fail(err == EEXIST ? "already exists (use --overwrite)"
                       : std::string("cannot move into place: ") + std::strerror(err));
}

InputFiles::InputFiles(const std::vector<fs::path>& inputs) {
  struct stat st;
  for (const auto& in : inputs)
    if (::stat(in.c_str(), &st) == 0) ids_.emplace(std::make_pair(st.st_dev, st.st_ino), in);
}

void InputFiles::refuse_as_output(const fs::path& output) const {
  struct stat st;
  if (::stat(output.c_str(), &st) != 0) return;
  const auto it = ids_.find({st.st_dev, st.st_ino});
  if (it != ids_.end())
    throw Error(ErrorKind::Output, output.string() + ": is the input file " + it->second.string() +
                                       "; originals are never written over");
}

}  // namespace cloak
