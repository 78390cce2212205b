// How many CPU threads a run should use: the cores the machine, the scheduler and the container
// actually give this process, never more than the node has.
#pragma once

#include <string>

namespace cloak {

// The fewest of: the CPUs this process may run on (its affinity, which Slurm's and cgroup cpusets
// narrow), the cgroup's CPU quota (a container's or a Kubernetes pod's limit, cgroup v2 cpu.max or
// v1 cfs_quota_us, rounded up) and SLURM_CPUS_PER_TASK. At least 1.
int default_threads();

// A cgroup v2 cpu.max line ("200000 100000": two CPUs; "150000 100000": two, rounded up) as CPUs;
// 0 when there is no quota ("max 100000") or the text is not one.
int cpus_from_cgroup_quota(const std::string& cpu_max);

}  // namespace cloak
