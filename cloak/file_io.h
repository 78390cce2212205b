// Whole-file reads and atomic, never-clobbering writes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace cloak {

// Reads a whole file; throws cloak::Error (Input) naming the file when it cannot.
std::vector<std::uint8_t> read_file(const std::filesystem::path& file);

// Writes bytes to a temporary file in the destination folder, flushes it to disk and moves it into
// place. Without `overwrite`, an existing destination is never replaced (the check and the move are
// one atomic step). Throws cloak::Error (Output) naming the file on failure; nothing is left
// behind.
void write_file_atomic(const std::filesystem::path& file, const std::vector<std::uint8_t>& bytes,
                       bool overwrite);

}  // namespace cloak
