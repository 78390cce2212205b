#include "cloak/pipeline/cpu_share.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cloak/io/file_io.h"

namespace cloak {

namespace {

// cgroup v1 keeps cpu.max's two numbers in two files (no quota: -1).
int v1_quota(const std::string& dir) {
  return cpus_from_cgroup_quota(read_first_line(dir + "/cpu.cfs_quota_us") + " " +
                                read_first_line(dir + "/cpu.cfs_period_us"));
}

// The tightest quota on this process's cgroup and those above it: "0::/a/b" (v2) has its cpu.max
// in /sys/fs/cgroup/a/b; "N:cpu,cpuacct:/a/b" (v1) under /sys/fs/cgroup/cpu (or cpu,cpuacct). A
// container that mounts its own cgroup at the root finds its quota there.
int cgroup_cpus() {
  int cpus = 0;
  const auto take = [&cpus](int c) {
    if (c > 0) cpus = cpus > 0 ? std::min(cpus, c) : c;
  };
  std::ifstream self("/proc/self/cgroup");
  for (std::string line; std::getline(self, line);) {
    const auto colon = line.find(':'), colon2 = line.find(':', colon + 1);
    if (colon == std::string::npos || colon2 == std::string::npos) continue;
    const std::string controllers = "," + line.substr(colon + 1, colon2 - colon - 1) + ",";
    const bool v2 = controllers == ",,", v1 = controllers.find(",cpu,") != std::string::npos;
    if (!v1 && !v2) continue;
    for (std::string dir = line.substr(colon2 + 1);; dir = dir.substr(0, dir.rfind('/'))) {
      if (v2) take(cpus_from_cgroup_quota(read_first_line("/sys/fs/cgroup" + dir + "/cpu.max")));
      for (const char* mount : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"})
        if (v1) take(v1_quota(mount + dir));
      if (dir.empty() || dir == "/") break;
    }
  }
  return cpus;
}

}  // namespace

int cpus_from_cgroup_quota(const std::string& cpu_max) {
  std::istringstream in(cpu_max);
  long quota = 0, period = 0;
  if (!(in >> quota >> period) || quota <= 0 || period <= 0) return 0;
  return static_cast<int>((quota + period - 1) / period);
}

int default_threads() {
  int cpus = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::min(cpus, CPU_COUNT(&set));
  if (const int quota = cgroup_cpus(); quota > 0) cpus = std::min(cpus, quota);
  if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK"); slurm && std::atoi(slurm) > 0)
    cpus = std::min(cpus, std::atoi(slurm));
  return std::max(1, cpus);
}

}  // namespace cloak
