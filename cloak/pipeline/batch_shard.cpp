#include "cloak/pipeline/batch_shard.h"

#include <cstdlib>
#include <optional>

#include "cloak/core/error.h"

namespace cloak {

namespace {

// A whole number written with digits only (no sign, space or suffix) that fits; else nothing.
std::optional<std::uint64_t> whole_number(const std::string& text) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::strtoull(text.c_str(), nullptr, 10);
}

}  // namespace

Shard parse_shard(const std::string& spec) {
  Shard s;
  if (spec.empty()) return s;
  const auto usage = [&](const std::string& why) {
    return Error(ErrorKind::Usage, "--shard " + spec + ": " + why);
  };
  const auto slash = spec.find('/');
  const auto count = whole_number(slash == std::string::npos ? "" : spec.substr(slash + 1));
  if (!count || *count == 0) throw usage("takes K/N or auto/N with whole numbers, e.g. 0/4");
  s.count = *count;
  const std::string k = spec.substr(0, slash);
  if (k == "auto") {
    const char* variable = nullptr;
    for (const char* name : {"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"})
      if (const char* v = std::getenv(name); v && *v && !variable) variable = name;
    if (!variable) throw usage("neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set");
    const std::string value = std::getenv(variable);
    const auto index = whole_number(value);
    if (!index || *index >= s.count)
      throw usage(std::string(variable) + " is " + value + ", not a shard in 0.." +
                  std::to_string(s.count - 1) + " (number the tasks 0 to " +
                  std::to_string(s.count - 1) + ")");
    s.index = *index;
    return s;
  }
  const auto index = whole_number(k);
  if (!index) throw usage("takes K/N or auto/N with whole numbers, e.g. 0/4");
  if (*index >= s.count) throw usage("K must be in 0..N-1");
  s.index = *index;
  return s;
}

std::uint64_t shard_of(const std::string& relative_path, std::uint64_t count) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : relative_path) h = (h ^ c) * 1099511628211ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h % count;
}

}  // namespace cloak
