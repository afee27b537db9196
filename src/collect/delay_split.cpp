#include "collect/delay_split.h"

#include <algorithm>

namespace vcpumap {

void DelaySplitter::add_waiter(int cpu, int tid, std::uint64_t now) {
  auto& waiters = cpus_[cpu].waiters;
  const bool waiting = std::any_of(waiters.begin(), waiters.end(),
                                   [tid](const Waiter& waiter) { return waiter.tid == tid; });
  if (!waiting) waiters.push_back({tid, now});  // already queued: it keeps its start
}

bool DelaySplitter::remove_waiter(int cpu, int tid) {
  auto& waiters = cpus_[cpu].waiters;
  const auto before = waiters.size();
  std::erase_if(waiters, [tid](const Waiter& waiter) { return waiter.tid == tid; });
  return waiters.size() != before;
}

void DelaySplitter::on_switch(const SchedEvent& event) {
  CpuState& here = cpus_[event.cpu];
  const std::uint64_t now = event.time_ns;
  const bool prev_vcpu = is_vcpu(event.prev_pid);
  // A vCPU that ran does not wait (its switch-in may have been lost), nor behind itself.
  if (prev_vcpu) {
    remove_waiter(event.cpu, event.prev_pid);
    running_.erase(event.prev_pid);
  }
  for (const Waiter& waiter : here.waiters) {
    const std::uint64_t start = std::max(waiter.since, here.last_switch);
    if (now <= start) continue;
    PairValue& value = pairs_[{waiter.tid, event.prev.tgid, event.prev_pid}];
    if (value.ns == 0) {
      value.kernel_thread = event.prev.kernel_thread;
      value.comm = event.prev.comm;
    }
    value.ns += now - start;
  }
  if (is_vcpu(event.next_pid)) {
    remove_waiter(event.cpu, event.next_pid);
    running_.insert(event.next_pid);
  }
  if (prev_vcpu && event.prev_state == 0) add_waiter(event.cpu, event.prev_pid, now);
  here.last_switch = now;
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
      if (is_vcpu(event.pid) && remove_waiter(event.orig_cpu, event.pid)) {
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
