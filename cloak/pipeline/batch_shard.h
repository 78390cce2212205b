// Which images of a batch one machine of a cluster takes: shard K of N.
#pragma once

#include <cstdint>
#include <string>

namespace cloak {

struct Shard {
  std::uint64_t index = 0, count = 1;
  std::string name() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// "K/N" (0 <= K < N, whole numbers and nothing else), "auto/N" (K is the task's own index as the
// scheduler gives it: Slurm's SLURM_ARRAY_TASK_ID, else a Kubernetes Indexed Job's
// JOB_COMPLETION_INDEX) or "" (the whole batch, whatever the environment says). Throws
// cloak::Error (Usage) saying what is wrong, and for auto/N which variable held what.
Shard parse_shard(const std::string& spec);

// The shard of N that an image takes, from its path relative to the batch: the same on every
// machine and whatever else the batch holds. FNV-1a, mixed (SplitMix64's finaliser) so that every
// character reaches the low bits: FNV-1a alone, modulo a power of two, sees only the low bits of
// each character and put whole folders in one shard.
std::uint64_t shard_of(const std::string& relative_path, std::uint64_t count);

}  // namespace cloak
