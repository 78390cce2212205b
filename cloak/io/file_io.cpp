#include "cloak/io/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
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
  const auto fail = [&](const std::string& why, int err = 0) {
    if (err == ENOSPC || err == EDQUOT) throw disk_full(file, err);
    throw Error(ErrorKind::Output,
                file.string() + ": " + why + (err ? std::string(": ") + std::strerror(err) : ""));
  };
  if (!overwrite && fs::exists(file)) fail("already exists (use --overwrite)");
  fs::path dir = file.parent_path().empty() ? "." : file.parent_path();
  remove_stale_temporaries(dir);
  std::string tmpl = (dir / temp_template(file)).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) fail("cannot write to folder " + dir.string(), errno);
  const std::string tmp = tmpl;
  try {
    write_all(fd, bytes.data(), bytes.size(), file);
  } catch (const Error&) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  fchmod(fd, 0644);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("write failed", err);
  }
  // link() refuses an existing destination, so a concurrent writer can never be clobbered.
  int rc = overwrite ? ::rename(tmp.c_str(), file.c_str()) : ::link(tmp.c_str(), file.c_str());
  int err = errno;
  if (!overwrite || rc != 0) ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) fail("already exists (use --overwrite)");
    fail("cannot move into place", err);
  }
}

void write_all(int fd, const void* data, std::size_t size, const fs::path& file) {
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, static_cast<const char*>(data) + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw write_failed(file, n == 0 ? ENOSPC : errno);
    }
    done += static_cast<std::size_t>(n);
  }
}

int open_plain_file(const fs::path& file, int flags, const std::string& what) {
  const auto refuse = [&](const std::string& why) {
    return Error(ErrorKind::Output, file.string() + ": cannot open the " + what + ": " + why);
  };
  const int fd = ::open(file.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP)
      throw refuse(
          "it is a symbolic link, and Cloak follows none in its output folder (remove it)");
    if (err == EISDIR) throw refuse("it is a folder (remove it)");
    if (err == ENOSPC || err == EDQUOT) throw disk_full(file, err);
    throw refuse(std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) {
    ::close(fd);
    throw refuse(S_ISREG(st.st_mode) ? "it has another name too (a hard link; remove it)"
                                     : "it is not a plain file (remove it)");
  }
  return fd;
}

Error write_failed(const fs::path& file, int err) {
  if (err == ENOSPC || err == EDQUOT) return disk_full(file, err);
  return Error(ErrorKind::Output, file.string() + ": write failed: " + std::strerror(err));
}

Error disk_full(const fs::path& file, int err) {
  return Error(ErrorKind::NoSpace, file.string() + ": the disk is full (" + std::strerror(err) +
                                       "); free some space, then run again");
}

bool is_inside(const fs::path& path, const fs::path& dir) {
  const auto rel = path.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

std::string printable(const std::string& text) {
  std::string out;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = byte(i);
    // The length of the character starting here and the range its second byte must fall in.
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
      n = 1;
    else if (c >= 0xC2 && c <= 0xDF)
      n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
      n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
      n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    bool valid = n > 0 && i + n <= text.size();
    for (std::size_t k = 1; valid && k < n; ++k)
      valid = k == 1 ? byte(i + k) >= lo && byte(i + k) <= hi : (byte(i + k) & 0xC0) == 0x80;
    if (valid) {
      out.append(text, i, n);
      i += n;
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", c);
      out += escaped;
      ++i;
    }
  }
  return out;
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
