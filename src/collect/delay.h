// Who delayed each vCPU over a window: the kernel's split of every vCPU's run delay among the
// tasks that ran where it waited (sources/bpf/delay_tracer.h), classified by what each task is
// to the VMs of a snapshot, and checked against the schedstat run_delay delta.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "collect/snapshot.h"
#include "sources/bpf/delay_tracer.h"

namespace vcpumap {

// What a vCPU waited behind.
enum class CulpritKind { vcpu, emulator, iothread, host, kernel, other };
// "vcpu", "emulator", "iothread", "host", "kernel" or "other".
std::string_view to_string(CulpritKind kind);

struct Culprit {
  CulpritKind kind = CulpritKind::other;
  std::uint64_t ns = 0;
  std::string vm;  // vcpu, emulator, iothread: the VM's display name
  // The VM's pid, or the host/kernel process's; nullopt when the engine could not tell (the perf
  // fallback reads it from /proc, and a task can be gone before it is asked).
  std::optional<int> pid;
  int vcpu = -1;         // vcpu
  int tid = 0;           // emulator: the thread
  std::string iothread;  // iothread: QEMU's id
  std::string comm;      // host, kernel: the comm seen running
  std::string why;       // other: what it holds
};

struct VcpuDelay {
  int vcpu = -1;
  int tid = 0;
  // The schedstat run_delay delta over the window; nullopt without CONFIG_SCHED_INFO or when the
  // thread was not read at both ends (it exited).
  std::optional<std::uint64_t> run_delay_ns;
  std::uint64_t attributed_ns = 0;  // what the kernel split among culprits (other excluded)
  std::vector<Culprit> behind;      // largest first; `other` holds the unattributed remainder
  // How long it ran while another VM's thread ran on an SMT sibling of its CPU, by that thread,
  // largest first; nullopt when not measured (no SMT here: DelayReport::ran_beside_why).
  std::optional<std::vector<Culprit>> ran_beside;
  // Set when the split and the delta differ by more than 5%: what the difference is.
  std::string mismatch;
};

struct VmDelay {
  std::string name;
  int pid = 0;
  std::string uuid;
  std::vector<VcpuDelay> vcpus;
};

// What one of the BPF programs cost over the window (BPF_ENABLE_STATS), when asked.
struct ProgramCost {
  std::string program;  // the tracepoint it runs on
  std::uint64_t runs = 0;
  std::uint64_t run_time_ns = 0;
};

struct DelayReport {
  std::uint64_t duration_ns = 0;
  std::string source;  // "bpf"
  std::vector<VmDelay> vms;
  std::vector<std::string> notes;     // e.g. what the programs dropped
  std::string ran_beside_why;         // why ran_beside is not measured; empty when it is
  std::vector<ProgramCost> programs;  // with program_stats only
};

// Run delay of each thread by tid, as the thread-facts source read it.
using RunDelays = std::vector<std::pair<int, std::uint64_t>>;

// A thread of some VM, as a culprit is classified against it.
struct KnownThread {
  std::string vm;  // the VM's display name
  int vm_pid = 0;
  ThreadRole role = ThreadRole::emulator_other;
  int vcpu = -1;
  int tid = 0;
  std::string iothread;
};
// The VMs' threads by tid.
using KnownThreads = std::unordered_map<int, KnownThread>;

// One vCPU's (waiter, culprit) pairs classified against `known` and merged, largest first, with
// the remainder of `run_delay_ns` (the schedstat delta, when known) as `other` and a mismatch
// noted past 5%: the split `delay` and `report` both give.
VcpuDelay split_vcpu_delay(int vcpu, int tid, const std::vector<bpf::DelayPair>& pairs,
                           const KnownThreads& known, std::optional<std::uint64_t> run_delay_ns);

// Classifies `pairs` against `snapshot` into one VcpuDelay per vCPU of `vms`, each checked
// against its run delay delta (`after` - `before`); `beside`, when measured, into each vCPU's
// ran_beside.
DelayReport attribute_delay(const Snapshot& snapshot, const std::vector<const Vm*>& vms,
                            const std::vector<bpf::DelayPair>& pairs, const RunDelays& before,
                            const RunDelays& after, std::chrono::nanoseconds duration,
                            const std::optional<std::vector<bpf::DelayPair>>& beside = {});

// For ran_beside: each CPU's SMT siblings (the other CPUs of its core), by CPU number; empty
// when no online CPU shares its core. VCPUMAP_DELAY_SIBLINGS=CPULIST (tests, and hosts whose
// sysfs hides SMT) makes the CPUs listed count as one core's siblings instead.
Result<std::vector<std::vector<int>>> smt_siblings(const Topology& topology);
// Why ran_beside is not measured with `siblings` (empty when it is).
std::string ran_beside_unmeasured(const std::vector<std::vector<int>>& siblings);

// The totals `now` less those of an earlier read `before` (by waiter and culprit): what was added
// in between. Pairs that added nothing are left out.
std::vector<bpf::DelayPair> subtract_pairs(const std::vector<bpf::DelayPair>& now,
                                           const std::vector<bpf::DelayPair>& before);

// Watches the vCPUs of the VMs named in `specs` (every VM when empty) for `duration` through
// `source` and gives who delayed each. With `program_stats`, the kernel also counts what each
// BPF program cost meanwhile (BPF_ENABLE_STATS, held for the window only).
Result<DelayReport> measure_delay(const SnapshotOptions& options, ThreadSource& source,
                                  const std::vector<std::string>& specs,
                                  std::chrono::nanoseconds duration, bool program_stats = false);

// The delay split kept running, for an exporter: the vCPUs of each snapshot are watched from the
// first snapshot that has them (their schedstat run delay then is where their window starts).
class DelayWatch {
 public:
  // Loads the programs; the error says in one line why BPF can't split delay here.
  static Result<std::unique_ptr<DelayWatch>> open();
  // Watches `snapshot`'s vCPUs not watched yet and gives each vCPU's split since it was first
  // watched: one map read, whatever the switch rate.
  Result<DelayReport> update(const Snapshot& snapshot);
  // The same, over the interval since the previous call only (top's rows): the first call gives
  // empty splits, as the vCPUs' windows start there.
  Result<DelayReport> update_interval(const Snapshot& snapshot);

 private:
  explicit DelayWatch(std::unique_ptr<bpf::DelayTracer> tracer) : tracer_(std::move(tracer)) {}
  // Watches the vCPUs new in `snapshot` (their run delay now is their baseline), attaches at the
  // first call, and gives the VMs, every vCPU's run delay now, and the kernel's totals.
  struct Reading {
    std::vector<const Vm*> vms;
    RunDelays now;
    std::vector<bpf::DelayPair> pairs;
    std::optional<std::vector<bpf::DelayPair>> beside;
  };
  Result<Reading> read(const Snapshot& snapshot);

  std::unique_ptr<bpf::DelayTracer> tracer_;
  bool attached_ = false;
  RunDelays baselines_;              // by tid: the run delay when first watched
  std::unordered_set<int> watched_;  // the tids in baselines_, to find them at once
  std::set<int> others_;             // the VMs' other threads watched so far
  std::string ran_beside_why_;
  std::chrono::steady_clock::time_point started_;
  // update_interval: the previous call's run delays and totals, and when it was.
  RunDelays previous_delays_;
  std::vector<bpf::DelayPair> previous_pairs_, previous_beside_;
  std::chrono::steady_clock::time_point previous_;
};

}  // namespace vcpumap
