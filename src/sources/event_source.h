// The sched-event source: the one interface record --exact reads switches, migrations and wakeups
// through, whichever engine gives them (bpf: a BPF ring buffer filled inside the tracepoints;
// perf: per-CPU perf rings of the tracepoints).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace vcpumap {

// What an engine knows of the task on one side of a switch besides its tid: tgid and cgroup 0
// and an empty comm where it can't tell (perf reads tgid and cgroup from /proc, once per tid: a
// task gone before that has neither). tid 0, the idle task, has tgid 0 for real.
struct SchedTaskInfo {
  int tgid = 0;
  std::string comm;
  std::uint64_t cgroup = 0;  // cgroup v2 id
  bool kernel_thread = false;
};

struct SchedEvent {
  enum class Kind { sched_switch, migrate, wakeup, lost };
  Kind kind = Kind::sched_switch;
  std::uint64_t time_ns = 0;  // CLOCK_MONOTONIC, as std::chrono::steady_clock
  int cpu = -1;               // the CPU it fired on (lost: the CPU whose events were dropped)
  int prev_pid = 0, next_pid = 0;
  std::int64_t prev_state = 0;
  SchedTaskInfo prev, next;  // switch: the two sides' tasks (the culprits of a vCPU's delay)
  int pid = 0;               // migrate, wakeup
  int orig_cpu = -1, dest_cpu = -1, target_cpu = -1;
  std::uint64_t lost = 0;
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // The engine's name: "bpf" or "perf".
  virtual std::string_view name() const = 0;
  // Keeps the events of these processes' threads (an engine without a filter in the kernel keeps
  // every event, and the caller picks). Called again as processes come and go.
  virtual Status watch_processes(std::span<const int> pids) = 0;
  // Starts the events flowing.
  virtual Status enable() = 0;
  // Waits up to `timeout_ms` for events, or for `extra_fd` (e.g. a signalfd) to become readable;
  // true when extra_fd is readable. A poll failure is an error, not a timeout.
  virtual Result<bool> wait(int timeout_ms, int extra_fd) = 0;
  // Appends every event waiting to `out`, and a `lost` event per CPU that dropped some. Switches
  // between two unwatched tasks come too on a CPU where a watched thread may wait.
  virtual void drain(std::vector<SchedEvent>& out) = 0;
};

}  // namespace vcpumap
