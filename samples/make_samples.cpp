// Generates the bundled sample images: procedural pictures made by this program, so the
// repository ships no third-party artwork. Run: cloak_make_samples OUTDIR
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "cloak/io/image_io.h"

namespace {

// Fractal value noise in [0,1], deterministic.
double hash(int x, int y, int seed) {
  unsigned h = static_cast<unsigned>(x * 374761393 + y * 668265263 + seed * 1442695041);
  h = (h ^ (h >> 13)) * 1274126177u;
  return ((h ^ (h >> 16)) & 0xffff) / 65535.0;
}
double noise(double x, double y, int seed) {
  const int xi = static_cast<int>(std::floor(x)), yi = static_cast<int>(std::floor(y));
  const double fx = x - xi, fy = y - yi;
  const double sx = fx * fx * (3 - 2 * fx), sy = fy * fy * (3 - 2 * fy);
  const double a = hash(xi, yi, seed), b = hash(xi + 1, yi, seed);
  const double c = hash(xi, yi + 1, seed), d = hash(xi + 1, yi + 1, seed);
  return (a + (b - a) * sx) * (1 - sy) + (c + (d - c) * sx) * sy;
}
double fbm(double x, double y, int seed) {
  double v = 0, amp = 0.5;
  for (int o = 0; o < 5; ++o, x *= 2, y *= 2, amp /= 2) v += amp * noise(x, y, seed + o);
  return v;
}

// A small landscape "painting": graded sky, a sun, textured hills, a lake and brush-stroke grain.
cloak::Image landscape(int w, int h) {
  cloak::Image img;
  img.width = w;
  img.height = h;
  img.color.resize(static_cast<std::size_t>(3 * w * h));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double u = static_cast<double>(x) / w, v = static_cast<double>(y) / h;
      double r = 0.95 - 0.5 * v, g = 0.75 - 0.35 * v, b = 0.55 + 0.35 * v;  // dusk sky
      const double sun = std::hypot(u - 0.7, v - 0.3);
      if (sun < 0.08) r = 1.0, g = 0.85, b = 0.5;
      const double ridge = 0.55 + 0.12 * std::sin(u * 7) + 0.08 * fbm(u * 4, 0, 3);
      if (v > ridge) {  // hills with painterly texture
        const double t = fbm(u * 24, v * 24, 7);
        r = 0.25 + 0.3 * t, g = 0.4 + 0.35 * t, b = 0.2 + 0.15 * t;
      }
      if (v > 0.82) {  // lake reflecting the sky, with ripples
        const double ripple = 0.08 * std::sin(v * 180 + 4 * fbm(u * 8, v * 30, 11));
        r = 0.35 + ripple, g = 0.45 + ripple, b = 0.65 + ripple;
      }
      const double grain = 0.06 * (fbm(u * 60 + v * 20, v * 8, 19) - 0.5);  // brush strokes
      const double rgb[3] = {r + grain, g + grain, b + grain};
      for (int c = 0; c < 3; ++c)
        img.color[static_cast<std::size_t>((c * h + y) * w + x)] =
            static_cast<float>(std::round(std::clamp(rgb[c], 0.0, 1.0) * 255) / 255);
    }
  return img;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  cloak::Image img = landscape(384, 256);
  img.metadata.png_text = {{"Title", "Dusk over the lake (procedural sample)", false},
                           {"Author", "Cloak sample generator", false}};
  cloak::write_image(img, dir / "dusk-lake.png", {95, true, std::nullopt});
  std::cout << (dir / "dusk-lake.png").string() << "\n";
}
