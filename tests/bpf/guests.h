// Fake guests started for the BPF tests and the cost tool, and procfs' own account of their
// threads, read with plain file reads to compare the BPF records with.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/cpuset.h"

namespace vcpumap::bpf::testing {

// `count` fake guests (tests/tools/fake_guest --guests) with `vcpus` vCPU threads each, stopped
// on destruction (SIGTERM to the parent, which ends its guests, then waited for).
class FakeGuests {
 public:
  FakeGuests(const std::string& fake_guest, int count, int vcpus);
  FakeGuests(const FakeGuests&) = delete;
  FakeGuests& operator=(const FakeGuests&) = delete;
  ~FakeGuests();

  // The guests' pids; empty if they could not be started.
  const std::vector<int>& pids() const { return pids_; }
  // SIGSTOPs every guest and waits (bounded) until each thread shows 'T'; false on timeout.
  bool freeze();

 private:
  pid_t parent_ = -1;
  std::vector<int> pids_;
};

// One thread as /proc/PID/task/TID/{stat,schedstat,sched} and sched_getaffinity show it.
struct ProcThread {
  int tid = 0;
  char state = '?';                                                 // stat 3
  std::uint64_t start_time_ticks = 0;                               // stat 22
  int cpu = -1;                                                     // stat 39
  std::uint64_t cpu_time_ns = 0, run_delay_ns = 0, timeslices = 0;  // schedstat
  std::uint64_t migrations = 0, nvcsw = 0, nivcsw = 0;              // sched
  CpuSet affinity;
  std::string comm;
};

// The tids of process `pid` (/proc/PID/task), sorted.
std::vector<int> proc_tids(int pid);
// Thread `tid` of `pid` from procfs; nullopt when it has gone.
std::optional<ProcThread> read_proc_thread(int pid, int tid);
// How many threads of `pid` are named "CPU n/...".
int vcpu_threads(int pid);
// Threads: of /proc/PID/status; -1 when gone.
int proc_thread_count(int pid);

}  // namespace vcpumap::bpf::testing
