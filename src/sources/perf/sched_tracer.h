// The kernel's scheduler tracepoints (sched_switch, sched_migrate_task, sched_wakeup) through
// perf_event_open, one ring buffer per CPU. Gives decoded events in kernel order per CPU, and
// the count of events the kernel dropped when a ring was full (PERF_RECORD_LOST).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sources/event_source.h"
#include "util/cpuset.h"
#include "util/result.h"

namespace vcpumap::perf {

// Where one field sits in a tracepoint's raw record (from its `format` file).
struct Field {
  int offset = -1;
  int size = 0;
};

// The id and the fields vcpumap reads of one tracepoint. Layouts differ between kernels (6.x
// moved sched_migrate_task's comm to a __data_loc), so they are read, not assumed.
struct Tracepoint {
  int id = -1;
  Field pid, prev_pid, next_pid, prev_state, orig_cpu, dest_cpu, target_cpu;
  Field prev_comm, next_comm;  // sched_switch's char[16]s: perf gives no tgid or cgroup
};

struct SchedTracepoints {
  Tracepoint sched_switch, migrate_task, wakeup;
  std::filesystem::path tracefs;  // where they were found
};

// Parses a tracepoint `format` file: its ID and the offset and size of every named field.
Result<Tracepoint> parse_tracepoint_format(std::string_view text);

// Finds the three tracepoints under ROOT/sys/kernel/tracing or ROOT/sys/kernel/debug/tracing.
// The error says how to mount tracefs.
Result<SchedTracepoints> find_sched_tracepoints(const std::filesystem::path& root);

using SchedEvent = vcpumap::SchedEvent;

// Decodes one raw tracepoint record (PERF_SAMPLE_RAW) into `event`; false when it is none of
// the three or too short.
bool decode_raw(const SchedTracepoints& tracepoints, std::string_view raw, SchedEvent& event);

// Decodes one whole perf ring record (perf_event_header first) of CPU `cpu`'s ring: a sample of
// the three tracepoints, or PERF_RECORD_LOST. False for any other record or one too short.
bool decode_record(const SchedTracepoints& tracepoints, int cpu, std::string_view record,
                   SchedEvent& event);

// Decodes the records of a ring's data area between `tail` and `head` (byte counts since the
// ring began, as perf_event_mmap_page has them; records wrap at the end of `ring`) into `out`.
// Gives the new tail: past the last whole record. `scratch` is reused between calls.
std::uint64_t decode_ring(const SchedTracepoints& tracepoints, int cpu, std::string_view ring,
                          std::uint64_t tail, std::uint64_t head, std::vector<SchedEvent>& out,
                          std::vector<char>& scratch);

class SchedTracer final : public EventSource {
 public:
  // Opens the three tracepoints on every CPU of `cpus` with a ring of `ring_pages` pages (a power
  // of two) per CPU. Needs root (or CAP_PERFMON); the error says what failed and why.
  static Result<std::unique_ptr<SchedTracer>> open(const SchedTracepoints& tracepoints,
                                                   const CpuSet& cpus, int ring_pages);
  ~SchedTracer();
  SchedTracer(const SchedTracer&) = delete;
  SchedTracer& operator=(const SchedTracer&) = delete;

  std::string_view name() const override { return "perf"; }
  // Nothing to do: perf has no filter in the kernel here; the caller keeps its processes' events.
  Status watch_processes(std::span<const int>) override { return Ok{}; }
  // Starts counting on every CPU; an error when the kernel refuses.
  Status enable() override;
  // Waits up to `timeout_ms` for a ring to fill past its watermark, or for `extra_fd` (e.g. a
  // signalfd) to become readable; true when extra_fd is readable. A poll failure is an error,
  // not a timeout.
  Result<bool> wait(int timeout_ms, int extra_fd) override;
  // Appends every event waiting in the rings to `out` (per CPU in time order, not merged).
  void drain(std::vector<SchedEvent>& out) override;

 private:
  struct Ring;
  // What perf's sched_switch lacks of a task and /proc/TID/status tells while it lives.
  struct TaskIdentity {
    int tgid = 0;  // 0: unknown (gone before it was asked)
    bool kernel_thread = false;
    std::uint64_t cgroup = 0;  // 0: unknown
  };
  // `tid`'s identity, asked once per tid.
  const TaskIdentity& identity(int tid);
  SchedTracer() = default;
  SchedTracepoints tracepoints_;
  std::vector<std::unique_ptr<Ring>> rings_;
  std::unordered_map<int, TaskIdentity> identities_;
};

}  // namespace vcpumap::perf
