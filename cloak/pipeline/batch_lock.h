// The lock that lets one `cloak batch` at a time write a manifest. The lock file says who holds it
// (host, boot, PID and the PID's start time, the Slurm job), so that a lock left by a process that
// died (killed, preempted, its node lost) is told from a live one, on this machine or on another
// that shares the folder, and never gives a second writer silently.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace cloak {

struct LockHolder {
  std::string host, boot_id;
  long pid = 0;
  unsigned long long start_ticks = 0;  // the PID's start (/proc/PID/stat): a reused PID differs
  std::string since;                   // when it took the lock, UTC, ISO 8601
  std::string slurm_job;               // SLURM_JOB_ID, which a requeued job keeps

  // "cloak on node7 (pid 4242, since 2026-12-02T08:01:02Z, Slurm job 55)"
  std::string describe() const;
};

// What the holder written in a lock file tells of its process.
enum class HolderState {
  Alive,      // on this machine, and running
  Gone,       // on this machine (or on this host name booted anew), and no longer running
  Elsewhere,  // on another machine: it cannot be checked from here
};
HolderState holder_state(const LockHolder& holder);

class BatchLock {
 public:
  // Takes the lock `file` (created when missing). Throws cloak::Error (Output), one line naming
  // the holder, when a live process holds it, or when a process on another machine does and it is
  // not this same Slurm job requeued (the line says how to release it once that run is over).
  explicit BatchLock(std::filesystem::path file);
  // Clears the holder, then releases.
  ~BatchLock();
  BatchLock(const BatchLock&) = delete;
  BatchLock& operator=(const BatchLock&) = delete;

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

// Who works under lock `file` now, for views that never take it: the holder when it is alive or
// on another machine (or holds the lock without having said who yet: host "?"), else nothing.
std::optional<LockHolder> live_holder(const std::filesystem::path& file);

}  // namespace cloak
