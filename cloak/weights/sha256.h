#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cloak {

// Lower-case hex SHA-256 of a byte buffer or of a whole file.
std::string sha256_hex(const std::vector<std::uint8_t>& bytes);
std::string sha256_file(const std::filesystem::path& file);

}  // namespace cloak
