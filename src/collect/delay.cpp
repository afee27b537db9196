#include "collect/delay.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <thread>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "util/fd.h"

namespace vcpumap {
namespace {

// The split may differ from schedstat's delta by this share before it is called a mismatch:
// waits that straddle the window's ends count in one and not the other.
constexpr double kTolerance = 0.05;

KnownThreads index_threads(const Snapshot& snapshot) {
  KnownThreads known;
  std::size_t threads = 0;
  for (const auto& vm : snapshot.vms) threads += vm.threads.size();
  known.reserve(threads);
  for (const auto& vm : snapshot.vms) {
    for (const auto& thread : vm.threads) {
      known[thread.tid] = {vm.display_name(), vm.pid,     thread.role,
                           thread.vcpu,       thread.tid, thread.iothread};
    }
  }
  return known;
}

Culprit classify(const bpf::DelayPair& pair, const KnownThreads& known) {
  Culprit culprit;
  culprit.ns = pair.ns;
  const auto found = known.find(pair.culprit_tid);
  if (found != known.end() && found->second.role != ThreadRole::vhost) {
    const KnownThread& thread = found->second;
    culprit.vm = thread.vm;
    culprit.pid = thread.vm_pid;
    if (thread.role == ThreadRole::vcpu) {
      culprit.kind = CulpritKind::vcpu;
      culprit.vcpu = thread.vcpu;
    } else if (thread.role == ThreadRole::iothread) {
      culprit.kind = CulpritKind::iothread;
      culprit.iothread = thread.iothread;
    } else {
      culprit.kind = CulpritKind::emulator;
      culprit.tid = thread.tid;
    }
    return culprit;
  }
  culprit.kind = pair.culprit_kernel_thread ? CulpritKind::kernel : CulpritKind::host;
  culprit.comm = pair.culprit_comm;
  // tgid 0 is "not known" but for tid 0, the idle task (sources/event_source.h).
  if (pair.culprit_tgid != 0 || pair.culprit_tid == 0) culprit.pid = pair.culprit_tgid;
  return culprit;
}

// Culprits that name the same thing are one: a host process's threads, a VM's emulator threads
// each stay apart by tid, kernel threads by pid.
auto culprit_key(const Culprit& c) {
  return std::tuple(
      c.kind, c.pid, c.vcpu, c.tid, c.iothread,
      c.kind == CulpritKind::host || c.kind == CulpritKind::kernel ? c.comm : std::string());
}

// Run delays by tid: at 10,000 vCPUs an exporter looks each one up at every scrape, so not by a
// walk of the list.
using RunDelayIndex = std::unordered_map<int, std::uint64_t>;

RunDelayIndex index_delays(const RunDelays& delays) {
  RunDelayIndex index;
  index.reserve(delays.size());
  for (const auto& [tid, ns] : delays) index.emplace(tid, ns);
  return index;
}

std::optional<std::uint64_t> delta(const RunDelayIndex& before, const RunDelayIndex& after,
                                   int tid) {
  const auto start = before.find(tid), end = after.find(tid);
  if (start == before.end() || end == after.end() || end->second < start->second) {
    return std::nullopt;
  }
  return end->second - start->second;
}

std::string format_ms(std::uint64_t ns) {
  return fmt::format("{:.1f} ms", ns / 1e6);
}

// The pairs grouped by waiter (sorted by waiter_tid), so each vCPU finds its own at once.
using PairsByWaiter = std::vector<const bpf::DelayPair*>;

PairsByWaiter group_by_waiter(const std::vector<bpf::DelayPair>& pairs) {
  PairsByWaiter grouped;
  grouped.reserve(pairs.size());
  for (const auto& pair : pairs) grouped.push_back(&pair);
  std::stable_sort(grouped.begin(), grouped.end(),
                   [](const auto* a, const auto* b) { return a->waiter_tid < b->waiter_tid; });
  return grouped;
}

// `tid`'s pairs (of `pairs`, grouped by waiter) as culprits, one per thing they name (unsorted);
// `sum` gets their total.
std::vector<Culprit> merge_culprits(const PairsByWaiter& pairs, int tid, const KnownThreads& known,
                                    std::uint64_t& sum) {
  std::vector<Culprit> merged;
  // Where each culprit already is in `merged`: a vCPU on a busy host (a build's compilers, each a
  // pid of its own) waits behind thousands, and a walk of `merged` for each took seconds.
  std::map<decltype(culprit_key(Culprit{})), std::size_t> where;
  const auto first = std::lower_bound(
      pairs.begin(), pairs.end(), tid,
      [](const bpf::DelayPair* pair, int waiter) { return pair->waiter_tid < waiter; });
  for (auto it = first; it != pairs.end() && (*it)->waiter_tid == tid; ++it) {
    auto culprit = classify(**it, known);
    sum += culprit.ns;
    const auto [slot, fresh] = where.try_emplace(culprit_key(culprit), merged.size());
    if (fresh) {
      merged.push_back(std::move(culprit));
    } else {
      merged[slot->second].ns += culprit.ns;
    }
  }
  return merged;
}

void largest_first(std::vector<Culprit>& culprits) {
  std::stable_sort(culprits.begin(), culprits.end(),
                   [](const Culprit& a, const Culprit& b) { return a.ns > b.ns; });
}

VcpuDelay split_grouped(int vcpu, int tid, const PairsByWaiter& pairs, const KnownThreads& known,
                        std::optional<std::uint64_t> run_delay_ns) {
  VcpuDelay out;
  out.vcpu = vcpu;
  out.tid = tid;
  out.run_delay_ns = run_delay_ns;
  auto merged = merge_culprits(pairs, tid, known, out.attributed_ns);
  if (out.run_delay_ns) {
    const std::uint64_t total = *out.run_delay_ns;
    if (total > out.attributed_ns) {
      Culprit other;
      other.ns = total - out.attributed_ns;
      other.why = "waits that began before tracing, or events the programs could not keep";
      merged.push_back(std::move(other));
    }
    const double gap = static_cast<double>(total > out.attributed_ns ? total - out.attributed_ns
                                                                     : out.attributed_ns - total);
    if (gap > kTolerance * static_cast<double>(std::max<std::uint64_t>(total, 1)) &&
        gap > 1e6) {  // under 1 ms, a share of nothing is no mismatch
      out.mismatch = fmt::format(
          "the kernel split {} of schedstat's {} run delay; {} of it is in `other`",
          format_ms(out.attributed_ns), format_ms(total),
          total > out.attributed_ns ? format_ms(total - out.attributed_ns) : std::string("none"));
    }
  }
  largest_first(merged);
  out.behind = std::move(merged);
  return out;
}

}  // namespace

VcpuDelay split_vcpu_delay(int vcpu, int tid, const std::vector<bpf::DelayPair>& pairs,
                           const KnownThreads& known, std::optional<std::uint64_t> run_delay_ns) {
  return split_grouped(vcpu, tid, group_by_waiter(pairs), known, run_delay_ns);
}

std::string_view to_string(CulpritKind kind) {
  switch (kind) {
    case CulpritKind::vcpu:
      return "vcpu";
    case CulpritKind::emulator:
      return "emulator";
    case CulpritKind::iothread:
      return "iothread";
    case CulpritKind::host:
      return "host";
    case CulpritKind::kernel:
      return "kernel";
    case CulpritKind::other:
      return "other";
  }
  return "other";
}

DelayReport attribute_delay(const Snapshot& snapshot, const std::vector<const Vm*>& vms,
                            const std::vector<bpf::DelayPair>& pairs, const RunDelays& before,
                            const RunDelays& after, std::chrono::nanoseconds duration,
                            const std::optional<std::vector<bpf::DelayPair>>& beside) {
  DelayReport report;
  report.duration_ns = static_cast<std::uint64_t>(duration.count());
  report.source = "bpf";
  const auto known = index_threads(snapshot);
  const auto grouped = group_by_waiter(pairs);
  std::optional<PairsByWaiter> beside_grouped;
  if (beside) beside_grouped = group_by_waiter(*beside);
  const auto start = index_delays(before), end = index_delays(after);
  report.vms.reserve(vms.size());
  for (const Vm* vm : vms) {
    VmDelay out{vm->display_name(), vm->pid, vm->uuid, {}};
    for (const VmThread* vcpu : vm->vcpus()) {
      out.vcpus.push_back(
          split_grouped(vcpu->vcpu, vcpu->tid, grouped, known, delta(start, end, vcpu->tid)));
      if (beside_grouped) {
        std::uint64_t sum = 0;
        auto culprits = merge_culprits(*beside_grouped, vcpu->tid, known, sum);
        largest_first(culprits);
        out.vcpus.back().ran_beside = std::move(culprits);
      }
    }
    report.vms.push_back(std::move(out));
  }
  return report;
}

namespace {}  // namespace

std::vector<bpf::DelayPair> subtract_pairs(const std::vector<bpf::DelayPair>& now,
                                           const std::vector<bpf::DelayPair>& before) {
  std::map<std::tuple<int, int, int>, std::uint64_t> earlier;
  for (const auto& pair : before) {
    earlier[{pair.waiter_tid, pair.culprit_tgid, pair.culprit_tid}] = pair.ns;
  }
  std::vector<bpf::DelayPair> added;
  for (const auto& pair : now) {
    const auto found = earlier.find({pair.waiter_tid, pair.culprit_tgid, pair.culprit_tid});
    const std::uint64_t was = found == earlier.end() ? 0 : found->second;
    if (pair.ns <= was) continue;  // nothing new (totals only grow)
    added.push_back(pair);
    added.back().ns = pair.ns - was;
  }
  return added;
}

namespace {

Result<RunDelays> read_run_delays(ThreadSource& source, const std::vector<int>& pids) {
  std::vector<ThreadReading> readings;
  if (auto read = source.read_threads(pids, readings); !read) return read.error();
  RunDelays delays;
  for (const auto& reading : readings) {
    if (reading.facts.run_delay_ns) delays.emplace_back(reading.tid, *reading.facts.run_delay_ns);
  }
  return delays;
}

}  // namespace

Result<std::vector<std::vector<int>>> smt_siblings(const Topology& topology) {
  std::vector<std::vector<int>> siblings;
  const auto add_core = [&](const CpuSet& core) {
    for (const int cpu : core.cpus()) {
      if (cpu < 0) continue;
      if (siblings.size() <= static_cast<std::size_t>(cpu)) siblings.resize(cpu + 1);
      for (const int other : core.cpus()) {
        if (other != cpu) siblings[static_cast<std::size_t>(cpu)].push_back(other);
      }
    }
  };
  if (const char* forced = std::getenv("VCPUMAP_DELAY_SIBLINGS"); forced && *forced) {
    auto core = CpuSet::parse_list(forced);
    if (!core) {
      return make_error(ExitCode::bad_input,
                        "VCPUMAP_DELAY_SIBLINGS='{}' is no CPU list: give one such as 0-1", forced);
    }
    add_core(*core);
    return siblings;
  }
  for (const auto& cpu : topology.cpus) {
    // Each core once, from its first CPU; offline CPUs have no siblings listed.
    if (cpu.siblings.count() >= 2 && cpu.siblings.cpus().front() == cpu.cpu) add_core(cpu.siblings);
  }
  return siblings;
}

std::string ran_beside_unmeasured(const std::vector<std::vector<int>>& siblings) {
  const bool smt = std::any_of(siblings.begin(), siblings.end(),
                               [](const auto& others) { return !others.empty(); });
  return smt ? std::string()
             : "this host has no SMT (one thread per core), so no vCPU runs beside another on "
               "its core";
}

Result<DelayReport> measure_delay(const SnapshotOptions& options, ThreadSource& source,
                                  const std::vector<std::string>& specs,
                                  std::chrono::nanoseconds duration, bool program_stats) {
  auto tracer = bpf::DelayTracer::open();
  if (!tracer) {
    return make_error(ExitCode::failure, "delay needs BPF on the sched tracepoints: {}",
                      tracer.error().message);
  }
  auto snapshot = take_snapshot(options, source);
  if (!snapshot) return snapshot.error();
  std::vector<const Vm*> chosen;
  for (const auto& spec : specs) {
    auto vm = find_vm(*snapshot, spec);
    if (!vm) return vm.error();
    if (std::find(chosen.begin(), chosen.end(), *vm) == chosen.end()) chosen.push_back(*vm);
  }
  if (specs.empty()) {
    for (const auto& vm : snapshot->vms) {
      if (vm.pid != 0) chosen.push_back(&vm);
    }
  }
  std::vector<int> vcpus, others, pids;
  for (const auto& vm : snapshot->vms) {
    const bool wanted = std::find(chosen.begin(), chosen.end(), &vm) != chosen.end();
    if (wanted) pids.push_back(vm.pid);
    // Every VM's threads are known to the kernel, the VMs not asked for included: ran_beside
    // counts what ran beside a chosen vCPU if it is any other VM's thread.
    for (const auto& thread : vm.threads) {
      (wanted && thread.role == ThreadRole::vcpu ? vcpus : others).push_back(thread.tid);
    }
  }
  if (auto watched = (*tracer)->watch(vcpus, others); !watched) return watched.error();
  auto siblings = smt_siblings(snapshot->topology);
  if (!siblings) return siblings.error();
  if (auto set = (*tracer)->set_siblings(*siblings); !set) return set.error();
  std::optional<Fd> stats;
  if (program_stats) {
    auto enabled = bpf::enable_program_stats();
    if (!enabled) return enabled.error();
    stats = std::move(*enabled);
  }
  if (auto attached = (*tracer)->attach(); !attached) return attached.error();
  // Attached first: a wait that ends inside the window is then traced from its start or, if it
  // began before, its remainder is `other`.
  auto before = read_run_delays(source, pids);
  if (!before) return before.error();
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(duration);
  auto after = read_run_delays(source, pids);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  if (!after) return after.error();
  auto pairs = (*tracer)->read();
  if (!pairs) return pairs.error();
  std::optional<std::vector<bpf::DelayPair>> beside;
  const auto why = ran_beside_unmeasured(*siblings);
  if (why.empty()) {
    auto read = (*tracer)->read_beside();
    if (!read) return read.error();
    beside = std::move(*read);
  }
  auto report = attribute_delay(*snapshot, chosen, *pairs, *before, *after, elapsed, beside);
  report.ran_beside_why = why;
  report.notes = snapshot->notes;
  std::uint64_t missed = 0;
  const auto costs = (*tracer)->program_stats();
  static constexpr const char* kTracepoints[] = {"sched_switch", "sched_wakeup", "sched_wakeup_new",
                                                 "sched_migrate_task"};
  for (std::size_t i = 0; i < costs.size(); ++i) {
    missed += costs[i].missed;
    if (program_stats && i < std::size(kTracepoints)) {
      report.programs.push_back({kTracepoints[i], costs[i].run_count, costs[i].run_time_ns});
    }
  }
  if (missed > 0) {
    report.notes.push_back(fmt::format(
        "the kernel skipped {} sched events (another BPF program was running on that CPU): the "
        "waits they would have ended or begun are in `other`",
        missed));
  }
  if (const auto dropped = (*tracer)->dropped().beside; dropped > 0) {
    report.notes.push_back(fmt::format(
        "the BPF programs could not keep {} stretches of ran_beside for lack of room: it is short "
        "by that",
        dropped));
  }
  if (const auto dropped = (*tracer)->dropped(); dropped.total() > 0) {
    report.notes.push_back(fmt::format(
        "the BPF programs dropped {} waits for lack of room ({} full CPUs' waiter slots, {} full "
        "totals, {} CPUs past their capacity): that delay is in `other`",
        dropped.total(), dropped.waiters, dropped.pairs, dropped.cpus));
  }
  return report;
}

Result<std::unique_ptr<DelayWatch>> DelayWatch::open() {
  auto tracer = bpf::DelayTracer::open();
  if (!tracer) return tracer.error();
  return std::unique_ptr<DelayWatch>(new DelayWatch(std::move(*tracer)));
}

Result<DelayWatch::Reading> DelayWatch::read(const Snapshot& snapshot) {
  Reading reading;
  std::vector<int> fresh, others;
  for (const auto& vm : snapshot.vms) {
    if (vm.pid == 0) continue;
    reading.vms.push_back(&vm);
    for (const auto& thread : vm.threads) {
      if (thread.role != ThreadRole::vcpu) {
        // ran_beside needs to know every VM thread in the kernel, not only the vCPUs.
        if (others_.insert(thread.tid).second) others.push_back(thread.tid);
        continue;
      }
      if (!thread.facts.run_delay_ns) continue;
      reading.now.emplace_back(thread.tid, *thread.facts.run_delay_ns);
      if (watched_.insert(thread.tid).second) {
        fresh.push_back(thread.tid);
        baselines_.emplace_back(thread.tid, *thread.facts.run_delay_ns);
      }
    }
  }
  if (auto watched = tracer_->watch(fresh, others); !watched) return watched.error();
  if (!attached_) {
    auto siblings = smt_siblings(snapshot.topology);
    if (!siblings) return siblings.error();
    if (auto set = tracer_->set_siblings(*siblings); !set) return set.error();
    ran_beside_why_ = ran_beside_unmeasured(*siblings);
    if (auto attached = tracer_->attach(); !attached) return attached.error();
    attached_ = true;
    started_ = previous_ = std::chrono::steady_clock::now();
  }
  auto pairs = tracer_->read();
  if (!pairs) return pairs.error();
  reading.pairs = std::move(*pairs);
  if (ran_beside_why_.empty()) {
    auto beside = tracer_->read_beside();
    if (!beside) return beside.error();
    reading.beside = std::move(*beside);
  }
  return reading;
}

Result<DelayReport> DelayWatch::update(const Snapshot& snapshot) {
  auto reading = read(snapshot);
  if (!reading) return reading.error();
  auto report = attribute_delay(snapshot, reading->vms, reading->pairs, baselines_, reading->now,
                                std::chrono::steady_clock::now() - started_, reading->beside);
  report.ran_beside_why = ran_beside_why_;
  return report;
}

Result<DelayReport> DelayWatch::update_interval(const Snapshot& snapshot) {
  auto reading = read(snapshot);
  if (!reading) return reading.error();
  const auto now = std::chrono::steady_clock::now();
  // A vCPU first seen now starts its window here; one seen before, at the previous call.
  // Looked up by tid, not by a walk of the list for each vCPU: at 10,000 vCPUs that walk was a
  // third of top's CPU.
  RunDelays before = previous_delays_;
  const auto known = index_delays(previous_delays_);
  for (const auto& [tid, ns] : reading->now) {
    if (known.count(tid) == 0) before.emplace_back(tid, ns);
  }
  auto pairs = subtract_pairs(reading->pairs, previous_pairs_);
  std::optional<std::vector<bpf::DelayPair>> beside;
  if (reading->beside) beside = subtract_pairs(*reading->beside, previous_beside_);
  auto report =
      attribute_delay(snapshot, reading->vms, pairs, before, reading->now, now - previous_, beside);
  report.ran_beside_why = ran_beside_why_;
  previous_delays_ = std::move(reading->now);
  previous_pairs_ = std::move(reading->pairs);
  if (reading->beside) previous_beside_ = std::move(*reading->beside);
  previous_ = now;
  return report;
}

}  // namespace vcpumap
