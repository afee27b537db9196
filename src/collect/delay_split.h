// Who delayed each vCPU, worked out in user space from a stream of sched events (a live event
// source or a recording replayed): the same rules as the kernel's aggregation in
// sources/bpf/sched_delay.bpf.c, giving the same (waiter, culprit) pairs that delay.h classifies.
//
// A vCPU waits from a wakeup, or from a switch-out while still runnable, until it is switched in;
// a vCPU moved while it waits starts over on its new CPU. The wait is charged, switch by switch,
// to the task that ran on that CPU (the `prev` side of each switch there).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "sources/bpf/delay_tracer.h"
#include "sources/event_source.h"

namespace vcpumap {

class DelaySplitter {
 public:
  // Makes `tid` a vCPU whose waits are split (from its next event on).
  void watch_vcpu(int tid) { vcpus_.insert(tid); }
  // Takes in the next event (events in time order across CPUs).
  void add(const SchedEvent& event);
  // Every (waiter, culprit) pair added up so far.
  std::vector<bpf::DelayPair> pairs() const;
  // Events the source said it lost: the waits they would have begun or ended are `other`.
  std::uint64_t lost() const { return lost_; }

 private:
  // A vCPU waits on one CPU at a time: a wait a lost or unseen event left on another CPU ends
  // when it runs anywhere, so it is never charged twice.
  struct Wait {
    int cpu = -1;
    std::uint64_t since = 0;
  };
  struct PairKey {
    int waiter = 0, tgid = 0, tid = 0;
    auto operator<=>(const PairKey&) const = default;
  };
  struct PairValue {
    std::uint64_t ns = 0;
    bool kernel_thread = false;
    std::string comm;  // when first seen
  };

  bool is_vcpu(int tid) const { return vcpus_.count(tid) != 0; }
  void add_waiter(int cpu, int tid, std::uint64_t now);
  void on_switch(const SchedEvent& event);

  std::set<int> vcpus_;
  std::set<int> running_;                     // watched vCPUs on a CPU now
  std::map<int, Wait> waits_;                 // by vCPU tid
  std::map<int, std::uint64_t> last_switch_;  // by CPU: the last switch seen there
  std::map<PairKey, PairValue> pairs_;
  std::uint64_t lost_ = 0;
};

}  // namespace vcpumap
