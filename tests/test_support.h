// Helpers shared by the test suites: where ../shared is, scratch folders, generated images.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cloak/image.h"

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

}  // namespace cloak::test
