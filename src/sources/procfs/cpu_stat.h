// Host CPU time and load from ROOT/proc/stat and ROOT/proc/loadavg: parsers (pure) and a reader
// that keeps the file open between samples.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/fd.h"
#include "util/result.h"

namespace vcpumap::procfs {

// One "cpuN" line of /proc/stat, in USER_HZ ticks (proc(5) order).
struct CpuTimes {
  int cpu = -1;
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                steal = 0;
  // guest and guest_nice are already counted in user and nice (kernel account_guest_time), so
  // they are left out of the sums.

  // Every tick the CPU was accounted for.
  std::uint64_t total() const {
    return user + nice + system + idle + iowait + irq + softirq + steal;
  }
  // Ticks doing work (not idle, not waiting for I/O, not stolen by our own hypervisor).
  std::uint64_t busy() const { return user + nice + system + irq + softirq; }
};

// The per-CPU lines of /proc/stat (the aggregate "cpu" line is skipped), by CPU number.
Result<std::vector<CpuTimes>> parse_proc_stat_cpus(std::string_view text);

// The three load averages of /proc/loadavg.
struct LoadAverage {
  double one = 0, five = 0, fifteen = 0;
};

// Parses /proc/loadavg ("0.52 0.40 0.33 2/345 6789").
Result<LoadAverage> parse_loadavg(std::string_view text);

// ROOT/proc/stat and ROOT/proc/loadavg, opened once and re-read with pread.
class HostCpuFiles {
 public:
  explicit HostCpuFiles(const std::filesystem::path& root);
  // Per-CPU times now; empty when proc/stat cannot be read or parsed.
  std::vector<CpuTimes> read_cpu_times();
  // Load averages now; nullopt when proc/loadavg is missing.
  std::optional<LoadAverage> read_loadavg();

 private:
  Fd stat_;
  Fd loadavg_;
};

}  // namespace vcpumap::procfs
