// Who delayed each vCPU, added up inside the kernel (sched_delay.bpf.c): for every watched vCPU
// and every task that ran on the CPU where it waited, how long it waited behind that task. User
// space reads one map per interval, so its cost does not grow with the switch rate.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sources/bpf/task_reader.h"
#include "util/result.h"

namespace vcpumap::bpf {

// How long vCPU `waiter_tid` waited while one task ran where it waited, since attach().
struct DelayPair {
  int waiter_tid = 0;
  int culprit_tgid = 0;
  int culprit_tid = 0;
  std::uint64_t ns = 0;
  bool culprit_kernel_thread = false;  // PF_KTHREAD (kworker, ksoftirqd, the idle task)
  std::string culprit_comm;            // the culprit's comm when first seen, raw bytes
};

// What the programs could not keep for lack of room (that delay is nobody's: `other`).
struct DelayDropped {
  std::uint64_t waiters = 0;  // a vCPU found every waiter slot of its CPU taken
  std::uint64_t pairs = 0;    // the aggregate map was full
  std::uint64_t cpus = 0;     // events on CPUs past the programs' capacity
  std::uint64_t beside = 0;   // the ran_beside map was full (that time is not counted)
  std::uint64_t total() const { return waiters + pairs + cpus; }
};

class DelayTracer {
 public:
  // Loads the tp_btf programs, not attached yet; the error says in one line what they need.
  static Result<std::unique_ptr<DelayTracer>> open();
  ~DelayTracer();
  DelayTracer(const DelayTracer&) = delete;
  DelayTracer& operator=(const DelayTracer&) = delete;

  // Makes `vcpus` the threads whose delay is split, and `others` threads of interest that never
  // wait here (VMs' other threads). Call before attach().
  Status watch(std::span<const int> vcpus, std::span<const int> others);
  // Makes `siblings[cpu]` the other CPUs of cpu's core, for ran_beside; CPUs not listed, or with
  // none, count nothing beside. Call before attach().
  Status set_siblings(const std::vector<std::vector<int>>& siblings);
  // Starts tracing: from now on the watched vCPUs' waits are added up.
  Status attach();
  // Every (waiter, culprit) pair added up since attach(); one map walk.
  Result<std::vector<DelayPair>> read() const;
  // Every (vCPU, another VM's thread on an SMT sibling) total since attach(), as pairs whose
  // waiter is the vCPU and whose ns is how long they ran side by side; one map walk.
  Result<std::vector<DelayPair>> read_beside() const;
  // What was dropped since attach().
  DelayDropped dropped() const;
  // The kernel's count of each program's runs and CPU time (switch, wakeup, wakeup_new,
  // migrate), counted only while BPF_ENABLE_STATS is held; empty if it can't be asked.
  std::vector<TaskReader::ProgramStats> program_stats() const;

  struct Programs;

 private:
  explicit DelayTracer(std::unique_ptr<Programs> programs);
  std::unique_ptr<Programs> programs_;
};

}  // namespace vcpumap::bpf
