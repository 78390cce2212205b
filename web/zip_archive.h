// A zip archive built in memory (libzip), for "download all".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cloak::web {

struct ZipEntry {
  std::string name;
  const std::vector<std::uint8_t>* bytes;
};

// The entries stored uncompressed (images are compressed already). Throws cloak::Error (Output).
std::vector<std::uint8_t> zip_archive(const std::vector<ZipEntry>& entries);

}  // namespace cloak::web
