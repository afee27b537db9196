// The sampler: one engine behind `top`, the exporter and recording. It keeps every VM thread's
// files open and re-reads them each sample, notices VMs and threads that come and go, and turns
// two samples into per-interval rates.
//
// Discovery cadence: a full look for new VMs (list ROOT/proc, read the command line of each
// process not already known as a VM) runs at the first sample and then at the first sample at
// least `discovery_interval` after the previous one; it also refreshes every thread's affinity.
// Between those, a sample costs one fstat of each VM's task folder (its link count is the
// thread count: a change makes that VM's threads be relisted) plus one pread per kept file.
// A thread whose read fails has exited; a VM whose main thread exited is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collect/snapshot.h"
#include "core/model.h"

namespace vcpumap {

// Where a rate came from, when there is more than one way to get it.
enum class RateSource {
  exact,     // the kernel's own counter (schedstat ns, se.nr_migrations)
  ticks,     // %CPU from stat's utime+stime ticks: schedstat is missing (coarse: 1/USER_HZ)
  observed,  // migrations counted from last-CPU changes seen between samples: sched is missing
             // (a lower bound: moves between two samples are not seen)
};
std::string_view to_string(RateSource source);

// One thread over one interval. Figures that cannot be known are empty, never 0.
struct ThreadRates {
  std::optional<double> cpu_pct;  // time on a CPU, % of wall time (100 = one CPU all the time)
  RateSource cpu_source = RateSource::exact;
  std::optional<double> delay_pct;  // time waiting on a run queue, % of wall time
  std::optional<double> migrations_per_s;
  RateSource migrations_source = RateSource::exact;
  std::optional<double> switches_per_s;  // voluntary + involuntary context switches
  int cpu = -1;                          // the CPU it last ran on
  int previous_cpu = -1;     // the CPU it last ran on at the previous sample (-1: first seen)
  bool cpu_changed = false;  // cpu != previous_cpu
  bool ran = false;          // it had CPU time in the interval (or is running now)
};

// One host CPU over one interval.
struct CpuLoad {
  int cpu = -1;
  std::optional<double> util_pct;  // busy ticks / all ticks of /proc/stat
  // vCPUs seen on this CPU at either end of the interval while they had CPU time in it, as
  // (index into Sample::snapshot.vms, vCPU number). Between samples a vCPU may also have been
  // elsewhere; exact per-switch placement needs the sched tracepoints.
  std::vector<std::pair<int, int>> vcpus;
};

// What the sampler gives after each sample.
struct Sample {
  // The facts at the end of the interval. snapshot.vms[i].threads[j] pairs with rates[i][j].
  Snapshot snapshot;
  std::vector<std::vector<ThreadRates>> rates;
  std::vector<CpuLoad> cpus;            // by CPU number, online CPUs with a /proc/stat line
  std::optional<double> host_util_pct;  // all CPUs together
  std::optional<double> load1, load5, load15;
  double interval_s = 0;         // 0 for the first sample: no rates yet
  std::uint64_t sequence = 0;    // 1 for the first sample
  std::vector<int> vms_started;  // pids of VMs first seen in this sample (after the first)
  std::vector<int> vms_exited;   // pids of VMs gone since the previous sample
};

struct SamplerOptions {
  SnapshotOptions snapshot;
  std::chrono::steady_clock::duration discovery_interval = std::chrono::seconds(2);
  // How many files the sampler may keep open (three per thread); threads beyond it have their
  // files opened for each sample. Empty: the open-file limit (raised to its hard limit) less a
  // reserve for everything else the process opens (HTTP clients, libvirt, discovery).
  std::optional<std::size_t> kept_file_budget;
  // Called on each sample's snapshot before it is given out, e.g. to attach what a libvirt
  // watcher knows (attach_watched) without asking libvirt per sample. Must not add or reorder VMs.
  std::function<void(Snapshot&)> annotate;
};

// Samples every VM thread of a host.
class Sampler {
 public:
  explicit Sampler(SamplerOptions options);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Takes a sample now. The first one reads topology and discovers VMs; an error is fatal only
  // then (e.g. --root without proc/).
  Result<const Sample*> sample();
  // Takes a sample as of the given times: tests drive the clock, the files stay real.
  Result<const Sample*> sample_at(std::chrono::steady_clock::time_point monotonic,
                                  std::chrono::system_clock::time_point wall);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ---- the delta logic, apart from I/O (unit-tested directly) ----

// Rates of one thread between two readings `interval_ns` apart; `previous` is nullptr for a
// thread first seen (or whose tid was reused) in this sample: then only cpu is known.
ThreadRates thread_rates(const ThreadFacts* previous, const ThreadFacts& current,
                         std::int64_t interval_ns, long ticks_per_second);

// Busy share of a CPU between two /proc/stat readings, in %; nullopt when no tick passed.
std::optional<double> cpu_util_pct(std::uint64_t busy_before, std::uint64_t total_before,
                                   std::uint64_t busy_after, std::uint64_t total_after);

}  // namespace vcpumap
