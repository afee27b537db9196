// A thread's CPU affinity, read and changed with sched_getaffinity/sched_setaffinity. These act
// on this machine's kernel only (tids of a --root tree mean nothing here).
#pragma once

#include "util/cpuset.h"

namespace vcpumap::procfs {

// What sched_getaffinity gave for one thread.
struct AffinityReading {
  CpuSet cpus;
  int error = 0;  // errno when reading failed (ESRCH: the thread exited), else 0
};

// The CPUs thread `tid` may run on; sized for any host, not cpu_set_t's 1024 CPUs.
AffinityReading read_affinity(int tid);
// Restricts thread `tid` to `cpus`; gives 0, or the errno (EPERM, ESRCH, EINVAL...).
int write_affinity(int tid, const CpuSet& cpus);

}  // namespace vcpumap::procfs
