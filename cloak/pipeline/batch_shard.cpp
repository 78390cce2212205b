#include "cloak/pipeline/batch_shard.h"

#include <cstdlib>
#include <stdexcept>

#include "cloak/core/error.h"

namespace cloak {

namespace {

std::uint64_t env_number(const char* name, bool* present) {
  const char* v = std::getenv(name);
  *present = v && *v;
  return *present ? std::strtoull(v, nullptr, 10) : 0;
}

}  // namespace

Shard parse_shard(const std::string& spec) {
  bool has_id, has_count, has_min, has_k8s;
  const auto slurm_id = env_number("SLURM_ARRAY_TASK_ID", &has_id);
  const auto slurm_count = env_number("SLURM_ARRAY_TASK_COUNT", &has_count);
  const auto slurm_min = env_number("SLURM_ARRAY_TASK_MIN", &has_min);
  const auto k8s = env_number("JOB_COMPLETION_INDEX", &has_k8s);
  Shard s;
  if (spec.empty()) {
    if (has_id && has_count) s = {slurm_id - slurm_min, slurm_count};
    return s;
  }
  const auto slash = spec.find('/');
  if (slash == std::string::npos) throw Error(ErrorKind::Usage, "--shard takes K/N, e.g. 0/4");
  const std::string k = spec.substr(0, slash);
  try {
    s.count = std::stoull(spec.substr(slash + 1));
    if (k == "auto") {
      if (!has_id && !has_k8s)
        throw Error(ErrorKind::Usage,
                    "--shard auto/N: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set");
      s.index = has_id ? slurm_id - slurm_min : k8s;
    } else {
      s.index = std::stoull(k);
    }
  } catch (const std::logic_error&) {
    throw Error(ErrorKind::Usage, "--shard takes K/N with whole numbers, e.g. 0/4");
  }
  if (s.count == 0 || s.index >= s.count)
    throw Error(ErrorKind::Usage, "--shard " + spec + ": K must be in 0..N-1");
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
