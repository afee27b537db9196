#include "collect/delay_split.h"

#include <algorithm>

namespace vcpumap {

void DelaySplitter::add_waiter(int cpu, int tid, std::uint64_t now) {
  // Already queued there: it keeps its start. Queued elsewhere: it moved, and starts over.
  const auto found = waits_.find(tid);
  if (found != waits_.end() && found->second.cpu == cpu) return;
  waits_[tid] = {cpu, now};
}

void DelaySplitter::on_switch(const SchedEvent& event) {
  const std::uint64_t now = event.time_ns;
  const auto last = last_switch_.find(event.cpu);
  const std::uint64_t last_switch = last == last_switch_.end() ? 0 : last->second;
  const bool prev_vcpu = is_vcpu(event.prev_pid);
  // A vCPU that ran does not wait (its switch-in may have been lost), nor behind itself.
  if (prev_vcpu) {
    waits_.erase(event.prev_pid);
    running_.erase(event.prev_pid);
  }
  for (const auto& [tid, wait] : waits_) {
    if (wait.cpu != event.cpu) continue;
    const std::uint64_t start = std::max(wait.since, last_switch);
    if (now <= start) continue;
    PairValue& value = pairs_[{tid, event.prev.tgid, event.prev_pid}];
    if (value.ns == 0) {
      value.kernel_thread = event.prev.kernel_thread;
      value.comm = event.prev.comm;
    }
    value.ns += now - start;
  }
  if (is_vcpu(event.next_pid)) {
    waits_.erase(event.next_pid);
    running_.insert(event.next_pid);
  }
  if (prev_vcpu && event.prev_state == 0) add_waiter(event.cpu, event.prev_pid, now);
  last_switch_[event.cpu] = now;
}

void DelaySplitter::add(const SchedEvent& event) {
  switch (event.kind) {
    case SchedEvent::Kind::sched_switch:
      on_switch(event);
      break;
    case SchedEvent::Kind::wakeup:
      if (is_vcpu(event.pid) && running_.count(event.pid) == 0) {
        add_waiter(event.target_cpu, event.pid, event.time_ns);
      }
      break;
    case SchedEvent::Kind::migrate:
      // Only a waiter moves; one moved asleep is added by the wakeup that follows.
      if (const auto wait = waits_.find(event.pid); wait != waits_.end()) {
        add_waiter(event.dest_cpu, event.pid, event.time_ns);
      }
      break;
    case SchedEvent::Kind::lost:
      lost_ += event.lost;
      break;
  }
}

std::vector<bpf::DelayPair> DelaySplitter::pairs() const {
  std::vector<bpf::DelayPair> out;
  out.reserve(pairs_.size());
  for (const auto& [key, value] : pairs_) {
    out.push_back({key.waiter, key.tgid, key.tid, value.ns, value.kernel_thread, value.comm});
  }
  return out;
}

}  // namespace vcpumap
