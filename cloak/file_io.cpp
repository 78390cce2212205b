#include "cloak/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "cloak/error.h"

namespace cloak {

std::vector<std::uint8_t> read_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw Error(ErrorKind::Input, file.string() + ": is a folder, not a file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorKind::Input, file.string() + ": cannot open: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw Error(ErrorKind::Input, file.string() + ": read failed");
  return bytes;
}

void write_file_atomic(const std::filesystem::path& file, const std::vector<std::uint8_t>& bytes,
                       bool overwrite) {
  const auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::Output, file.string() + ": " + why);
  };
  if (!overwrite && std::filesystem::exists(file)) fail("already exists (use --overwrite)");
  std::filesystem::path dir = file.parent_path().empty() ? "." : file.parent_path();
  std::string tmpl = (dir / ("." + file.filename().string() + ".cloak-XXXXXX")).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) fail("cannot write to folder " + dir.string() + ": " + std::strerror(errno));
  const std::string tmp = tmpl;
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(std::string("write failed: ") + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  fchmod(fd, 0644);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(std::string("write failed: ") + std::strerror(errno));
  }
  // link() refuses an existing destination, so a concurrent writer can never be clobbered.
  int rc = overwrite ? ::rename(tmp.c_str(), file.c_str()) : ::link(tmp.c_str(), file.c_str());
  int err = errno;
  if (!overwrite || rc != 0) ::unlink(tmp.c_str());
  if (rc != 0)
    fail(err == EEXIST ? "already exists (use --overwrite)"
                       : std::string("cannot move into place: ") + std::strerror(err));
}

}  // namespace cloak
