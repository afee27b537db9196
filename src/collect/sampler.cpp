#include "collect/sampler.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "collect/discovery.h"
#include "sources/procfs/cpu_stat.h"

namespace vcpumap {

std::string_view to_string(RateSource source) {
  switch (source) {
    case RateSource::exact:
      return "exact";
    case RateSource::ticks:
      return "ticks";
    case RateSource::observed:
      return "observed";
  }
  return "exact";
}

namespace {

// b - a when both are known and the counter did not go back.
std::optional<std::uint64_t> delta(const std::optional<std::uint64_t>& a,
                                   const std::optional<std::uint64_t>& b) {
  if (!a || !b || *b < *a) return std::nullopt;
  return *b - *a;
}

}  // namespace

ThreadRates thread_rates(const ThreadFacts* previous, const ThreadFacts& current,
                         std::int64_t interval_ns, long ticks_per_second) {
  ThreadRates rates;
  rates.cpu = current.last_cpu;
  rates.ran = current.state == 'R';
  if (previous == nullptr) return rates;
  rates.previous_cpu = previous->last_cpu;
  rates.cpu_changed = rates.previous_cpu >= 0 && rates.cpu >= 0 && rates.cpu != rates.previous_cpu;
  if (interval_ns <= 0) return rates;
  const double ns = static_cast<double>(interval_ns);
  const double seconds = ns / 1e9;

  if (const auto cpu_ns = delta(previous->cpu_time_ns, current.cpu_time_ns)) {
    rates.cpu_pct = 100.0 * static_cast<double>(*cpu_ns) / ns;
    rates.ran = rates.ran || *cpu_ns > 0;
  } else if (!current.cpu_time_ns && ticks_per_second > 0) {
    if (const auto ticks = delta(previous->cpu_ticks(), current.cpu_ticks())) {
      rates.cpu_pct = 100.0 * (static_cast<double>(*ticks) / ticks_per_second) / seconds;
      rates.cpu_source = RateSource::ticks;
      rates.ran = rates.ran || *ticks > 0;
    }
  }
  if (const auto delay_ns = delta(previous->run_delay_ns, current.run_delay_ns)) {
    rates.delay_pct = 100.0 * static_cast<double>(*delay_ns) / ns;
  }
  if (const auto moves = delta(previous->migrations, current.migrations)) {
    rates.migrations_per_s = static_cast<double>(*moves) / seconds;
  } else if (!current.migrations) {
    rates.migrations_per_s = (rates.cpu_changed ? 1.0 : 0.0) / seconds;
    rates.migrations_source = RateSource::observed;
  }
  const auto voluntary = delta(previous->voluntary_switches, current.voluntary_switches);
  const auto involuntary = delta(previous->involuntary_switches, current.involuntary_switches);
  if (voluntary && involuntary) {
    rates.switches_per_s = static_cast<double>(*voluntary + *involuntary) / seconds;
  }
  return rates;
}

std::optional<double> cpu_util_pct(std::uint64_t busy_before, std::uint64_t total_before,
                                   std::uint64_t busy_after, std::uint64_t total_after) {
  if (total_after <= total_before || busy_after < busy_before) return std::nullopt;
  const double util = 100.0 * static_cast<double>(busy_after - busy_before) /
                      static_cast<double>(total_after - total_before);
  return std::min(util, 100.0);
}

// ---- the I/O side ----

struct Sampler::State {
  explicit State(SamplerOptions opts)
      : options(std::move(opts)),
        host(options.snapshot.root),
        proxmox_configs(options.snapshot.root) {}

  SamplerOptions options;
  std::unique_ptr<ThreadSource> source;
  procfs::HostCpuFiles host;
  proxmox::ConfigFiles proxmox_configs;  // a stat per Proxmox VM per sample: edits are seen
  Sample sample;
  std::vector<std::vector<int>> vhost_pids;  // pairs with sample.snapshot.vms
  std::vector<procfs::CpuTimes> cpu_times;
  std::optional<std::chrono::steady_clock::time_point> last_discovery;
  // Reused each sample, so a steady sample allocates little.
  std::vector<int> pids;
  std::vector<ThreadReading> readings;
  std::unordered_map<int, std::size_t> owner;     // pid (VM or vhost worker) -> VM index
  std::unordered_map<int, std::size_t> previous;  // tid -> index in the VM's previous threads

  Status first_sample();
  void adopt(FoundVm&& found);
  Status refresh(std::int64_t interval_ns);
  void discover();
  void sample_cpus();
};

void Sampler::State::adopt(FoundVm&& found) {
  auto& vm = found.vm;
  if (vm.pid <= 0) return;  // a libvirt domain that is not running has no threads to sample
  sample.rates.emplace_back(vm.threads.size());
  for (std::size_t j = 0; j < vm.threads.size(); ++j) {
    sample.rates.back()[j] = thread_rates(nullptr, vm.threads[j].facts, 0, 0);
  }
  sample.snapshot.vms.push_back(std::move(vm));
  vhost_pids.push_back(std::move(found.vhost_pids));
}

Status Sampler::State::first_sample() {
  auto opened =
      open_thread_source(options.snapshot, true, sample.snapshot.notes, options.kept_file_budget);
  if (!opened) return opened.error();
  source = std::move(*opened);
  auto notes = std::move(sample.snapshot.notes);
  std::map<int, std::vector<int>> vhost;
  auto snapshot = take_snapshot(options.snapshot, *source, &vhost, &proxmox_configs);
  if (!snapshot) return snapshot.error();
  auto vms = std::move(snapshot->vms);
  snapshot->vms.clear();
  sample.snapshot = std::move(*snapshot);
  sample.snapshot.notes.insert(sample.snapshot.notes.begin(), notes.begin(), notes.end());
  for (auto& vm : vms) {
    auto workers = std::move(vhost[vm.pid]);
    adopt({std::move(vm), std::move(workers)});
  }
  cpu_times = host.read_cpu_times();
  return Ok{};
}

Status Sampler::State::refresh(std::int64_t interval_ns) {
  auto& vms = sample.snapshot.vms;
  pids.clear();
  owner.clear();
  for (std::size_t i = 0; i < vms.size(); ++i) {
    pids.push_back(vms[i].pid);
    owner[vms[i].pid] = i;
    for (const int pid : vhost_pids[i]) {
      pids.push_back(pid);
      owner[pid] = i;
    }
  }
  readings.clear();
  if (auto status = source->read_threads(pids, readings); !status) return status;
  for (auto& note : source->take_notes()) sample.snapshot.notes.push_back(std::move(note));

  // Readings come grouped by process, in the order of `pids`: walk them VM by VM.
  const long hz = sample.snapshot.clock_ticks_per_second;
  std::vector<bool> alive(vms.size(), false);
  std::vector<std::vector<VmThread>> threads(vms.size());
  std::vector<std::vector<ThreadRates>> rates(vms.size());
  std::size_t current = vms.size();
  for (auto& reading : readings) {
    const std::size_t i = owner.at(reading.pid);
    auto& vm = vms[i];
    if (i != current) {
      // Readings come grouped by process (ThreadSource's contract), so the VM before is done:
      // its old threads, moved from, are given back now rather than held beside every new one.
      if (current < vms.size()) std::vector<VmThread>().swap(vms[current].threads);
      current = i;
      previous.clear();
      for (std::size_t j = 0; j < vm.threads.size(); ++j) previous[vm.threads[j].tid] = j;
      // Grown one push at a time, these vectors held up to twice their threads (peak RSS).
      threads[i].reserve(vm.threads.size());
      rates[i].reserve(vm.threads.size());
    }
    if (reading.tid == vm.pid) alive[i] = true;
    const auto it = previous.find(reading.tid);
    VmThread* before = it == previous.end() ? nullptr : &vm.threads[it->second];
    // The same tid with another start time is another thread: name and role start over.
    if (before != nullptr && before->facts.start_time_ticks != reading.facts.start_time_ticks) {
      before = nullptr;
    }
    if (before == nullptr) {
      auto thread = make_vm_thread(std::move(reading), vm);
      rates[i].push_back(thread_rates(nullptr, thread.facts, 0, 0));
      threads[i].push_back(std::move(thread));
      continue;
    }
    rates[i].push_back(thread_rates(&before->facts, reading.facts, interval_ns, hz));
    VmThread thread = std::move(*before);
    thread.facts = std::move(reading.facts);
    threads[i].push_back(std::move(thread));
  }
  // A VM whose main thread is gone has exited (its pid may come back as another process).
  std::vector<Vm> kept;
  std::vector<std::vector<ThreadRates>> kept_rates;
  std::vector<std::vector<int>> kept_vhost;
  kept.reserve(vms.size());
  kept_rates.reserve(vms.size());
  kept_vhost.reserve(vms.size());
  for (std::size_t i = 0; i < vms.size(); ++i) {
    if (!alive[i]) {
      sample.vms_exited.push_back(vms[i].pid);
      continue;
    }
    // Sort the threads and keep their rates paired with them.
    std::vector<std::size_t> order(threads[i].size());
    for (std::size_t j = 0; j < order.size(); ++j) order[j] = j;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return thread_order_less(threads[i][a], threads[i][b]);
    });
    std::vector<VmThread> sorted;
    std::vector<ThreadRates> sorted_rates;
    sorted.reserve(order.size());
    sorted_rates.reserve(order.size());
    for (const std::size_t j : order) {
      sorted.push_back(std::move(threads[i][j]));
      sorted_rates.push_back(rates[i][j]);
    }
    // Given back now, not at the end: else every VM's threads are held twice at once.
    std::vector<VmThread>().swap(threads[i]);
    std::vector<ThreadRates>().swap(rates[i]);
    vms[i].threads = std::move(sorted);
    refresh_platform(vms[i], proxmox_configs);
    kept.push_back(std::move(vms[i]));
    kept_rates.push_back(std::move(sorted_rates));
    kept_vhost.push_back(std::move(vhost_pids[i]));
  }
  vms = std::move(kept);
  sample.rates = std::move(kept_rates);
  vhost_pids = std::move(kept_vhost);
  return Ok{};
}

void Sampler::State::discover() {
  std::set<int> known;
  for (const auto& vm : sample.snapshot.vms) known.insert(vm.pid);
  auto found = find_vms(*source, options.snapshot, known, sample.snapshot.notes, &proxmox_configs);
  if (!found) {
    sample.snapshot.notes.push_back(
        fmt::format("looking for new VMs failed: {}", found.error().message));
    return;
  }
  for (auto& vm : *found) {
    sample.vms_started.push_back(vm.vm.pid);
    adopt(std::move(vm));
  }
}

void Sampler::State::sample_cpus() {
  auto now = host.read_cpu_times();
  std::map<int, const procfs::CpuTimes*> before;
  for (const auto& times : cpu_times) before[times.cpu] = &times;
  sample.cpus.clear();
  std::uint64_t busy_before = 0, total_before = 0, busy_after = 0, total_after = 0;
  std::map<int, std::size_t> by_cpu;
  for (const auto& times : now) {
    CpuLoad load;
    load.cpu = times.cpu;
    if (const auto it = before.find(times.cpu); it != before.end()) {
      load.util_pct =
          cpu_util_pct(it->second->busy(), it->second->total(), times.busy(), times.total());
      busy_before += it->second->busy();
      total_before += it->second->total();
      busy_after += times.busy();
      total_after += times.total();
    }
    by_cpu[times.cpu] = sample.cpus.size();
    sample.cpus.push_back(std::move(load));
  }
  sample.host_util_pct = before.empty()
                             ? std::nullopt
                             : cpu_util_pct(busy_before, total_before, busy_after, total_after);
  cpu_times = std::move(now);

  for (std::size_t i = 0; i < sample.snapshot.vms.size(); ++i) {
    const auto& vm = sample.snapshot.vms[i];
    for (std::size_t j = 0; j < vm.threads.size(); ++j) {
      const auto& thread = vm.threads[j];
      const auto& rates = sample.rates[i][j];
      if (thread.role != ThreadRole::vcpu || !rates.ran) continue;
      for (const int cpu : {rates.cpu, rates.previous_cpu}) {
        if (const auto it = by_cpu.find(cpu); it != by_cpu.end()) {
          auto& vcpus = sample.cpus[it->second].vcpus;
          const std::pair<int, int> entry{static_cast<int>(i), thread.vcpu};
          if (std::find(vcpus.begin(), vcpus.end(), entry) == vcpus.end()) vcpus.push_back(entry);
        }
      }
    }
  }
}

Sampler::Sampler(SamplerOptions options) : state_(std::make_unique<State>(std::move(options))) {}
Sampler::~Sampler() = default;

Result<const Sample*> Sampler::sample() {
  return sample_at(std::chrono::steady_clock::now(), std::chrono::system_clock::now());
}

Result<const Sample*> Sampler::sample_at(std::chrono::steady_clock::time_point monotonic,
                                         std::chrono::system_clock::time_point wall) {
  auto& state = *state_;
  auto& sample = state.sample;
  sample.vms_started.clear();
  sample.vms_exited.clear();
  std::int64_t interval_ns = 0;
  if (sample.sequence == 0) {
    if (auto status = state.first_sample(); !status) return status.error();
    state.last_discovery = monotonic;
  } else {
    interval_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(monotonic - sample.snapshot.monotonic)
            .count();
    if (auto status = state.refresh(interval_ns); !status) return status.error();
    if (!state.last_discovery ||
        monotonic - *state.last_discovery >= state.options.discovery_interval) {
      state.discover();
      state.last_discovery = monotonic;
    }
  }
  state.sample_cpus();
  if (const auto load = state.host.read_loadavg()) {
    sample.load1 = load->one;
    sample.load5 = load->five;
    sample.load15 = load->fifteen;
  }
  if (state.options.annotate) state.options.annotate(sample.snapshot);
  sample.snapshot.monotonic = monotonic;
  sample.snapshot.wall = wall;
  sample.interval_s = static_cast<double>(interval_ns) / 1e9;
  ++sample.sequence;
  return &sample;
}

}  // namespace vcpumap
