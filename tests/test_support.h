// Helpers shared by the test suites: where ../shared is, scratch folders, generated images.
#pragma once

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cloak/io/image_io.h"

namespace cloak::test {

inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("CLOAK_SHARED_DIR"); env && *env) return env;
  return std::filesystem::path(CLOAK_SOURCE_DIR).parent_path() / "shared";
}
inline std::filesystem::path models_dir() {
  return shared_dir() / "models";
}

// A fresh folder per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cloak-test-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path path(const std::string& name) const { return dir_ / name; }
  std::filesystem::path dir_;
};

// A deterministic test picture: smooth gradients, a hard edge and fine texture, so that every
// codec path and both flat and textured regions are exercised. Values are exact at `bit_depth`.
inline Image make_test_image(int w, int h, int color_channels, bool alpha, int bit_depth) {
  Image img;
  img.width = w;
  img.height = h;
  img.color_channels = color_channels;
  img.bit_depth = bit_depth;
  const double maxv = bit_depth == 16 ? 65535.0 : 255.0;
  auto q = [&](double v) {
    return static_cast<float>(std::round(v * maxv)) / static_cast<float>(maxv);
  };
  for (int c = 0; c < color_channels; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double v = (x + 2.0 * y + 37.0 * c) / (w + 2.0 * h + 80.0);
        if (x > w / 2) v = 0.5 + 0.4 * std::sin(0.9 * x + 1.3 * y + c);  // texture
        if (y < h / 4) v = 0.25 + 0.1 * c;                               // flat band
        img.color.push_back(q(v));
      }
  if (alpha)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) img.alpha.push_back(x < w / 4 ? 0.0f : q(0.3 + 0.7 * y / h));
  return img;
}

// A well-formed ICC v2 RGB display profile: 128-byte header, one tag (a 400-byte copyright text),
// creator "clok" so that it differs from any profile a library might add.
inline std::vector<std::uint8_t> make_icc_profile() {
  std::vector<std::uint8_t> icc(556, 0);
  auto put = [&](std::size_t at, const char* s) { std::memcpy(icc.data() + at, s, 4); };
  icc[2] = 0x02;
  icc[3] = 0x2C;  // big-endian size 556
  icc[8] = 0x02;
  icc[9] = 0x10;  // version 2.1
  put(12, "mntr");
  put(16, "RGB ");
  put(20, "XYZ ");
  put(36, "acsp");
  const std::uint8_t d50[12] = {0, 0, 0xF6, 0xD6, 0, 1, 0, 0, 0, 0, 0xD3, 0x2D};
  std::memcpy(icc.data() + 68, d50, 12);
  icc[131] = 1;  // tag count
  put(132, "cprt");
  icc[139] = 144;
  icc[142] = 0x01;
  icc[143] = 0x98;  // offset 144, size 408
  put(144, "text");
  for (std::size_t i = 152; i < 551; ++i) icc[i] = static_cast<std::uint8_t>('a' + i % 26);
  put(80, "clok");  // creator: distinguishes it from any profile a library might add
  return icc;
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<std::uint8_t>& b) {
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
}

// A TCP connection to 127.0.0.1:`port`; -1 when it cannot be made. The caller closes it.
inline int connect_local(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

struct CliRun {
  int code;
  std::string output;
};

// Runs a shell command line; captures stdout (and what the line redirects into it).
inline CliRun run_shell(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

#ifdef CLOAK_CLI
// Runs the cloak binary with `args` (a shell command line, so `env` and redirections work) in
// `dir`; captures stdout and stderr together.
inline CliRun cloak_cli(const std::filesystem::path& dir, const std::string& args,
                        const std::string& prefix = "") {
  return run_shell("cd '" + dir.string() + "' && " + prefix + "'" CLOAK_CLI "' " + args + " 2>&1");
}
#endif

}  // namespace cloak::test
