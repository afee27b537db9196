// Parsers for the /proc files vcpumap reads. Pure functions over text: reading is elsewhere
// (procfs.h), so these are unit-tested and fuzzed on their own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/cpuset.h"
#include "util/result.h"

namespace vcpumap::procfs {

// The fields of /proc/<pid>/task/<tid>/stat that vcpumap uses; numbers are proc(5)'s.
struct StatFields {
  std::string comm;                    // (2) may hold spaces, ')', newlines, any byte
  char state = '?';                    // (3)
  std::uint64_t utime_ticks = 0;       // (14)
  std::uint64_t stime_ticks = 0;       // (15)
  std::uint64_t start_time_ticks = 0;  // (22) since boot, in clock ticks
  int processor = -1;                  // (39) CPU number last executed on
};

// Parses a stat line. The name ends at the LAST ')' (the kernel does not escape it).
Result<StatFields> parse_stat(std::string_view text);

// /proc/<pid>/task/<tid>/schedstat: time on CPU, time waiting on a run queue, timeslices.
struct SchedStat {
  std::uint64_t cpu_time_ns = 0;
  std::uint64_t run_delay_ns = 0;
  std::uint64_t timeslices = 0;
};

// Parses a schedstat line ("123 456 7").
Result<SchedStat> parse_schedstat(std::string_view text);

// Counters from /proc/<pid>/task/<tid>/sched (present with CONFIG_SCHED_DEBUG).
struct SchedCounters {
  std::optional<std::uint64_t> migrations;  // se.nr_migrations
  std::optional<std::uint64_t> voluntary_switches;
  std::optional<std::uint64_t> involuntary_switches;
};

// Picks the counters out of a sched file; a counter that is not there stays empty.
SchedCounters parse_sched(std::string_view text);

// The affinity in a status file's "Cpus_allowed_list:" line.
Result<CpuSet> parse_status_affinity(std::string_view text);

// The thread's id in its innermost PID namespace: the last field of a status file's "NSpid:"
// line (Linux >= 4.1); nullopt without one.
std::optional<int> parse_status_nspid(std::string_view text);

// Splits /proc/<pid>/cmdline (NUL-separated, possibly NUL-terminated) into arguments.
std::vector<std::string> parse_cmdline(std::string_view text);

}  // namespace vcpumap::procfs
