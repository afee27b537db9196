// The bpf engine of the sched-event source: tp_btf programs (sched_events.bpf.c) put the events of
// the watched processes' threads into one BPF ring buffer. Unlike per-CPU perf tracepoint rings,
// which lose sched_migrate_task events on some kernels, an event is either delivered or counted
// as lost, per CPU.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "sources/event_source.h"
#include "util/result.h"

namespace vcpumap::bpf {

class EventRing final : public EventSource {
 public:
  // Loads the programs (not attached); the error says in one line what they need.
  static Result<std::unique_ptr<EventRing>> open();
  ~EventRing() override;
  EventRing(const EventRing&) = delete;
  EventRing& operator=(const EventRing&) = delete;

  std::string_view name() const override { return "bpf"; }
  // Makes `pids` the processes whose threads' events are kept, changing only what differs.
  Status watch_processes(std::span<const int> pids) override;
  // Attaches the programs to the tracepoints.
  Status enable() override;
  Result<bool> wait(int timeout_ms, int extra_fd) override;
  void drain(std::vector<SchedEvent>& out) override;

  struct Programs;

 private:
  explicit EventRing(std::unique_ptr<Programs> programs);
  std::unique_ptr<Programs> programs_;
};

}  // namespace vcpumap::bpf
