#include "audit/observe.h"

#include <set>

#include "collect/discovery.h"
#include "collect/sampler.h"
#include "collect/sampling_loop.h"

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

namespace {

void record_thread(AuditFacts& facts, int tid, const ThreadFacts& now) {
  auto found = facts.threads.find(tid);
  if (found == facts.threads.end()) return;  // born after the snapshot: not audited
  auto& observed = found->second;
  if (now.start_time_ticks != observed.start_time_ticks) return;  // a reused tid
  ++observed.samples;
  const auto cpu_time = cpu_time_of(now);
  if (cpu_time > observed.cpu_time || now.state == 'R') count_cpu(observed, now);
  observed.cpu_time = cpu_time;
}

}  // namespace

void record_sample(AuditFacts& facts, const std::vector<ThreadReading>& threads) {
  for (const auto& reading : threads) record_thread(facts, reading.tid, reading.facts);
}

void record_sample(AuditFacts& facts, const Snapshot& snapshot) {
  for (const auto& vm : snapshot.vms) {
    for (const auto& thread : vm.threads) record_thread(facts, thread.tid, thread.facts);
  }
}

namespace {

// The snapshot of a look: libvirt's view from the watcher when there is one, else listed now.
Result<Snapshot> take(const GatherOptions& options) {
  if (!options.watcher) return take_snapshot(options.snapshot);
  SnapshotOptions from_proc = options.snapshot;
  from_proc.use_libvirt = false;
  auto snapshot = take_snapshot(from_proc);
  if (snapshot) join_watched(*snapshot, options.watcher->view());
  return snapshot;
}

// `later`'s facts with what the watch saw of each thread that is still the same thread.
void keep_watched(AuditFacts& later, const AuditFacts& watched) {
  for (auto& [tid, observed] : later.threads) {
    const auto found = watched.threads.find(tid);
    if (found == watched.threads.end()) continue;
    const auto& seen = found->second;
    if (seen.start_time_ticks != observed.start_time_ticks) continue;  // a reused tid
    observed.cpus_ran = observed.cpus_ran | seen.cpus_ran;
    observed.ran_outside = observed.ran_outside | seen.ran_outside;
    observed.samples += seen.samples;
  }
  later.watched = watched.watched;
}

}  // namespace

Result<AuditInput> look(const GatherOptions& options) {
  auto snapshot = take(options);
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
  // The sampler's first sample re-finds the VMs; libvirt is read by the looks only.
  SamplerOptions sampler_options;
  sampler_options.snapshot = options.snapshot;
  sampler_options.snapshot.use_libvirt = false;
  sampler_options.snapshot.with_topology = false;
  Sampler sampler(std::move(sampler_options));
  LoopOptions loop;
  loop.period = options.interval;
  loop.duration = options.watch;
  const auto start = loop.start;
  auto end = run_sampling_loop(sampler, loop, [&](const Sample& sample) -> Result<bool> {
    record_sample(input.facts, sample.snapshot);
    return true;
  });
  (void)end;  // a sample that fails ends the watch early; `watched` says how long it was
  input.facts.watched =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
  if (!options.watcher) {
    // The Proxmox configs as they are at the end, as the pinning the watch ends with is judged.
    proxmox::ConfigFiles configs(options.snapshot.root);
    for (auto& vm : input.snapshot.vms) refresh_platform(vm, configs);
    return;
  }
  auto later = look(options);
  if (!later) return;  // the first look stands
  keep_watched(later->facts, input.facts);
  input = std::move(*later);
}

Result<AuditInput> gather(const GatherOptions& options) {
  auto input = look(options);
  if (input) watch(*input, options);
  return input;
}

}  // namespace vcpumap::audit
