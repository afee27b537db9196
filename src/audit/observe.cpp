#include "audit/observe.h"

#include <set>
#include <thread>

namespace vcpumap::audit {
namespace {

// CPU time in the finest unit the kernel gives: schedstat ns, else stat ticks.
std::uint64_t cpu_time_of(const ThreadFacts& facts) {
  return facts.cpu_time_ns.value_or(facts.cpu_ticks().value_or(0));
}

void count_cpu(ThreadObservation& observed, const ThreadFacts& facts) {
  if (facts.last_cpu < 0) return;
  observed.cpus_ran.add(facts.last_cpu);
  // An empty affinity means it could not be read (the thread exited mid-read): no verdict.
  if (!facts.affinity.empty() && !facts.affinity.contains(facts.last_cpu)) {
    observed.ran_outside.add(facts.last_cpu);
  }
}

// The processes whose task folders hold the VMs' threads: each VM, and each vhost worker
// (a kernel thread, its own process).
std::set<int> processes_to_sample(const Snapshot& snapshot) {
  std::set<int> pids;
  for (const auto& vm : snapshot.vms) {
    if (vm.pid <= 0) continue;
    pids.insert(vm.pid);
    for (const auto* vhost : vm.threads_with(ThreadRole::vhost)) pids.insert(vhost->tid);
  }
  return pids;
}

}  // namespace

AuditFacts first_look(const Snapshot& snapshot, const procfs::CgroupReader& cgroups) {
  AuditFacts facts;
  for (const auto& vm : snapshot.vms) {
    for (const auto& thread : vm.threads) {
      auto& observed = facts.threads[thread.tid];
      const int pid = thread.role == ThreadRole::vhost ? thread.tid : vm.pid;
      observed.cgroup = cgroups.thread_cpuset(pid, thread.tid);
      observed.samples = 1;
      observed.start_time_ticks = thread.facts.start_time_ticks;
      observed.cpu_time = cpu_time_of(thread.facts);
      // Only a running thread's last CPU is surely where it is now.
      if (thread.facts.state == 'R') count_cpu(observed, thread.facts);
    }
  }
  return facts;
}

void record_sample(AuditFacts& facts, const std::vector<ThreadReading>& threads) {
  for (const auto& reading : threads) {
    auto found = facts.threads.find(reading.tid);
    if (found == facts.threads.end()) continue;  // born after the snapshot: not audited
    auto& observed = found->second;
    if (reading.facts.start_time_ticks != observed.start_time_ticks) continue;  // a reused tid
    ++observed.samples;
    const auto cpu_time = cpu_time_of(reading.facts);
    if (cpu_time > observed.cpu_time || reading.facts.state == 'R') {
      count_cpu(observed, reading.facts);
    }
    observed.cpu_time = cpu_time;
  }
}

Result<AuditInput> look(const GatherOptions& options) {
  auto snapshot = take_snapshot(options.snapshot);
  if (!snapshot) return snapshot.error();
  const procfs::Procfs procfs(options.snapshot.root);
  AuditInput input{std::move(*snapshot), {}};
  input.facts = first_look(input.snapshot, procfs::CgroupReader(options.snapshot.root));
  // numa_maps walks every page table of the process: read it only where it can matter.
  if (input.snapshot.topology.nodes.size() > 1) {
    for (const auto& vm : input.snapshot.vms) {
      if (vm.pid <= 0) continue;
      if (auto memory = procfs::read_node_memory(procfs, vm.pid)) {
        input.facts.vm_memory[vm.pid] = std::move(*memory);
      }
    }
  }
  return input;
}

void watch(AuditInput& input, const GatherOptions& options) {
  if (options.watch.count() <= 0) return;
  std::vector<std::string> notes;
  auto source = open_thread_source(options.snapshot, true, notes);
  if (!source) return;  // the snapshot just opened the same source
  const auto sampled = processes_to_sample(input.snapshot);
  const std::vector<int> pids(sampled.begin(), sampled.end());
  std::vector<ThreadReading> readings;
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + options.watch;
  for (auto next = start + options.interval; next <= until; next += options.interval) {
    std::this_thread::sleep_until(next);
    readings.clear();
    if (!(*source)->read_threads(pids, readings)) break;
    record_sample(input.facts, readings);
  }
  input.facts.watched = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
}

Result<AuditInput> gather(const GatherOptions& options) {
  auto input = look(options);
  if (input) watch(*input, options);
  return input;
}

}  // namespace vcpumap::audit
