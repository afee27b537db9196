#include "sources/bpf/event_decode.h"

#include <cstring>

#include "sources/bpf/delay_records.h"
#include "util/cpuset.h"

namespace vcpumap::bpf {
namespace {

bool valid_cpu(int cpu) {
  return cpu >= 0 && cpu < CpuSet::kMaxCpu;
}

// One side of a switch: what the report names a culprit by.
SchedTaskInfo task_info(const vcpumap_sched_task& raw) {
  SchedTaskInfo info;
  info.tgid = raw.tgid;
  info.comm.assign(raw.comm, strnlen(raw.comm, sizeof(raw.comm)));
  info.cgroup = raw.cgroup;
  info.kernel_thread = (raw.flags & 0x00200000U) != 0;  // PF_KTHREAD
  return info;
}

}  // namespace

Result<SchedEvent> decode_event(std::span<const std::byte> record) {
  if (record.size() < sizeof(vcpumap_sched_event)) {
    return make_error(ExitCode::failure, "sched event record of {} bytes: it takes {}",
                      record.size(), sizeof(vcpumap_sched_event));
  }
  vcpumap_sched_event raw;
  std::memcpy(&raw, record.data(), sizeof(raw));
  if (!valid_cpu(raw.cpu)) {
    return make_error(ExitCode::failure, "sched event record on CPU {}: no such CPU", raw.cpu);
  }
  SchedEvent event;
  event.time_ns = raw.time_ns;
  event.cpu = raw.cpu;
  switch (raw.kind) {
    case VCPUMAP_EVENT_SWITCH:
      if (raw.prev_pid < 0 || raw.next_pid < 0) {
        return make_error(ExitCode::failure, "sched_switch record from pid {} to {}", raw.prev_pid,
                          raw.next_pid);
      }
      event.kind = SchedEvent::Kind::sched_switch;
      event.prev_pid = raw.prev_pid;
      event.next_pid = raw.next_pid;
      event.prev_state = raw.prev_state;
      event.prev = task_info(raw.prev);
      event.next = task_info(raw.next);
      return event;
    case VCPUMAP_EVENT_MIGRATE:
      if (raw.pid < 0 || !valid_cpu(raw.orig_cpu) || !valid_cpu(raw.dest_cpu)) {
        return make_error(ExitCode::failure,
                          "sched_migrate_task record of pid {} from CPU {} to {}", raw.pid,
                          raw.orig_cpu, raw.dest_cpu);
      }
      event.kind = SchedEvent::Kind::migrate;
      event.pid = raw.pid;
      event.orig_cpu = raw.orig_cpu;
      event.dest_cpu = raw.dest_cpu;
      return event;
    case VCPUMAP_EVENT_WAKEUP:
      if (raw.pid < 0 || !valid_cpu(raw.target_cpu)) {
        return make_error(ExitCode::failure, "sched_wakeup record of pid {} on CPU {}", raw.pid,
                          raw.target_cpu);
      }
      event.kind = SchedEvent::Kind::wakeup;
      event.pid = raw.pid;
      event.target_cpu = raw.target_cpu;
      return event;
    default:
      // A kind this build does not know: not ours to guess.
      return make_error(ExitCode::failure, "sched event record of kind {}: this build knows 1-3",
                        raw.kind);
  }
}

}  // namespace vcpumap::bpf
