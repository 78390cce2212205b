// Which images of a batch one machine of a cluster takes: shard K of N.
#pragma once

#include <cstdint>
#include <string>

namespace cloak {

struct Shard {
  std::uint64_t index = 0, count = 1;
  std::string name() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// "K/N" (0 <= K < N), "auto/N" or "" (K and N from Slurm's SLURM_ARRAY_TASK_ID, _MIN and _COUNT,
// or K from a Kubernetes Indexed Job's JOB_COMPLETION_INDEX; "" without them is the whole batch).
// Throws cloak::Error (Usage) saying what is wrong.
Shard parse_shard(const std::string& spec);

// The shard of N that an image takes, from its path relative to the batch: the same on every
// machine and whatever else the batch holds. FNV-1a, mixed (SplitMix64's finaliser) so that every
// character reaches the low bits: FNV-1a alone, modulo a power of two, sees only the low bits of
// each character and put whole folders in one shard.
std::uint64_t shard_of(const std::string& relative_path, std::uint64_t count);

}  // namespace cloak
