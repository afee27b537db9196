// What an audit knows beyond a Snapshot: each thread's cgroup cpuset, the CPUs it was seen
// running on during a watch, and each VM's memory per NUMA node. Gathered here, judged by the
// pure rules in audit.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "collect/snapshot.h"
#include "sources/procfs/cgroup.h"
#include "sources/procfs/numa_maps.h"
#include "sources/procfs/procfs.h"

namespace vcpumap::audit {

// One thread over the audit.
struct ThreadObservation {
  std::optional<procfs::CgroupCpuset> cgroup;  // nullopt: no cpuset controller seen
  CpuSet cpus_ran;                             // CPUs it was seen running on
  CpuSet ran_outside;  // of those, CPUs its affinity of that moment excluded
  int samples = 0;     // samples in which it was seen (1 without --watch)
  // Identity and CPU time at the last sample: a CPU counts as "ran on" only when CPU time grew
  // (a sleeping thread's stat field 39 is where it ran last, maybe before a re-pin).
  std::uint64_t start_time_ticks = 0;
  std::uint64_t cpu_time = 0;
};

// Everything the rules read besides the snapshot.
struct AuditFacts {
  std::map<int, ThreadObservation> threads;     // by tid
  std::map<int, procfs::NodeMemory> vm_memory;  // by VM pid, only on hosts with >1 node
  std::chrono::milliseconds watched{0};         // length of the observation, 0 without --watch
};

struct AuditInput {
  Snapshot snapshot;
  AuditFacts facts;
};

struct GatherOptions {
  SnapshotOptions snapshot;
  std::chrono::milliseconds watch{0};  // observe for this long (0: one look)
  std::chrono::milliseconds interval{100};
  // libvirt's view kept current by its events, as top's and serve's: when set, the looks read it
  // instead of listing libvirt, and the watch ends with a second look, so the audit judges the
  // pinning of the end of the watch (a re-pin during it included) without a relisting.
  std::shared_ptr<const libvirt::Watcher> watcher;
};

// The first look: the snapshot's own threads, with their cgroup cpusets and the CPUs of
// threads caught running ('R').
AuditFacts first_look(const Snapshot& snapshot, const procfs::CgroupReader& cgroups);

// Adds one later reading of a process's threads: counts the CPU of each known thread whose CPU
// time grew since the last reading.
void record_sample(AuditFacts& facts, const std::vector<ThreadReading>& threads);
// The same for every thread of a sample's VMs.
void record_sample(AuditFacts& facts, const Snapshot& snapshot);

// The first look: takes the snapshot and reads cgroups and, on NUMA hosts, numa_maps.
Result<AuditInput> look(const GatherOptions& options);
// Samples every VM thread of `input` each `interval` for `watch` (nothing when watch is 0); with
// a watcher, then looks again and keeps, of each thread still there, what the watch saw.
void watch(AuditInput& input, const GatherOptions& options);
// look, then watch.
Result<AuditInput> gather(const GatherOptions& options);

}  // namespace vcpumap::audit
