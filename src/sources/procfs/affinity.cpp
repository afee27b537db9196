#include "sources/procfs/affinity.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

namespace vcpumap::procfs {
namespace {

// CPU_ALLOC'd masks freed on every path.
struct MaskDeleter {
  void operator()(cpu_set_t* mask) const { CPU_FREE(mask); }
};
using Mask = std::unique_ptr<cpu_set_t, MaskDeleter>;

// A first guess at the kernel's nr_cpu_ids: the configured CPUs, at least 1024 (glibc's size).
// Asked once: glibc answers _SC_NPROCESSORS_CONF by reading /sys on every call, which cost more
// than the sched_getaffinity itself when a snapshot reads thousands of threads.
int initial_mask_cpus() {
  static const int cpus = static_cast<int>(std::max<long>(1024, ::sysconf(_SC_NPROCESSORS_CONF)));
  return cpus;
}

}  // namespace

AffinityReading read_affinity(int tid) {
  AffinityReading reading;
  // sched_getaffinity fails with EINVAL when the mask is smaller than the kernel's nr_cpu_ids:
  // grow it until it fits (CpuSet::kMaxCpu bounds the loop).
  for (int cpus = initial_mask_cpus(); cpus <= CpuSet::kMaxCpu; cpus *= 2) {
    Mask mask(CPU_ALLOC(cpus));
    if (!mask) {
      reading.error = ENOMEM;
      return reading;
    }
    const auto size = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size, mask.get());
    if (::sched_getaffinity(tid, size, mask.get()) == 0) {
      // Word by word: the sampler reads every thread's affinity, and most words are 0.
      constexpr int kBits = 8 * sizeof(mask->__bits[0]);
      const int words = static_cast<int>(size / sizeof(mask->__bits[0]));
      for (int word = 0; word < words; ++word) {
        for (auto bits = mask->__bits[word]; bits != 0; bits &= bits - 1) {
          reading.cpus.add(word * kBits + __builtin_ctzl(bits));
        }
      }
      reading.error = 0;
      return reading;
    }
    reading.error = errno;
    if (reading.error != EINVAL) return reading;
  }
  return reading;
}

int write_affinity(int tid, const CpuSet& cpus) {
  const int width = std::max(cpus.end(), initial_mask_cpus());
  Mask mask(CPU_ALLOC(width));
  if (!mask) return ENOMEM;
  const auto size = CPU_ALLOC_SIZE(width);
  CPU_ZERO_S(size, mask.get());
  for (const int cpu : cpus.cpus()) CPU_SET_S(cpu, size, mask.get());
  // The kernel masks the set with the CPUs that are online and allowed by the thread's cpuset
  // cgroup; it fails with EINVAL only when nothing is left.
  if (::sched_setaffinity(tid, size, mask.get()) != 0) return errno;
  return 0;
}

}  // namespace vcpumap::procfs
