// The digital-art set: the kinds of picture most artists post (flat colour, gradients, vector
// shapes with anti-aliased edges, line art and lettering, cel shading, pixel art, a transparent
// sticker), drawn by this code at any size, so that tests and benchmarks measure visibility where
// it is hardest to hide a change. Deterministic.
#pragma once

#include <string>
#include <vector>

#include "cloak/core/image.h"

namespace cloak::samples {

struct Artwork {
  std::string name;
  Image image;  // 8-bit sRGB, side x side; the sticker has alpha
};

std::vector<Artwork> digital_art(int side);

}  // namespace cloak::samples
