#include "collect/sampler.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>
#include <unordered_set>

#include <fmt/format.h>

#include "core/identify.h"
#include "sources/procfs/cpu_stat.h"
#include "sources/procfs/procfs.h"
#include "sources/procfs/thread_files.h"

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
    const auto ticks_before = previous->utime_ticks + previous->stime_ticks;
    const auto ticks_after = current.utime_ticks + current.stime_ticks;
    if (ticks_after >= ticks_before) {
      const auto ticks = ticks_after - ticks_before;
      rates.cpu_pct = 100.0 * (static_cast<double>(ticks) / ticks_per_second) / seconds;
      rates.cpu_source = RateSource::ticks;
      rates.ran = rates.ran || ticks > 0;
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

namespace {

// One thread's kept files and the process folder they live in (a vhost kernel thread is its
// own process, not one of the VM's threads).
struct ThreadSlot {
  std::optional<procfs::ThreadFiles> files;
  int owner_pid = 0;
};

struct VmState {
  procfs::TaskDir task_dir;
  std::vector<ThreadSlot> slots;                   // pairs with Vm::threads
  std::map<int, procfs::TaskDir> other_task_dirs;  // vhost kernel threads' own folders
};

// Sort key of snapshot.cpp: vCPUs by index, I/O threads by id, main loop, other, vhost.
std::tuple<int, int, std::string, int> thread_order(const VmThread& thread) {
  return {static_cast<int>(thread.role), thread.vcpu, thread.iothread, thread.tid};
}

}  // namespace

struct Sampler::State {
  explicit State(SamplerOptions opts)
      : options(std::move(opts)),
        procfs(options.snapshot.root),
        proc(options.snapshot.root / "proc"),
        host(options.snapshot.root) {
    std::error_code error;
    live = std::filesystem::equivalent(options.snapshot.root, "/", error);
    open_file_limit = procfs::raise_open_file_limit();
    // A quarter of the limit, up to 1,024 descriptors, stays free for everything else.
    const auto reserve = std::min<std::uint64_t>(open_file_limit / 4, 1024);
    budget = procfs::FileBudget(options.kept_file_budget.value_or(open_file_limit - reserve));
  }

  SamplerOptions options;
  procfs::Procfs procfs;
  std::filesystem::path proc;
  procfs::HostCpuFiles host;
  bool live = false;
  procfs::FileBudget budget;  // before `vms`: their kept files give back to it when destroyed
  Sample sample;
  std::vector<VmState> vms;  // pairs with sample.snapshot.vms
  std::vector<procfs::CpuTimes> cpu_times;
  std::optional<std::chrono::steady_clock::time_point> last_discovery;
  procfs::ParsedThread scratch;
  procfs::ThreadTexts texts;
  std::uint64_t open_file_limit = 0;
  bool reopen_noted = false;

  Status first_sample();
  void discover();
  void adopt(Vm&& vm);
  void refresh_vm(std::size_t index, std::int64_t interval_ns);
  void relist_threads(std::size_t index);
  void sample_cpus();
  // Notes, once, that some thread's files are opened per sample.
  std::optional<procfs::ThreadFiles> noted(std::optional<procfs::ThreadFiles> files);
};

std::optional<procfs::ThreadFiles> Sampler::State::noted(std::optional<procfs::ThreadFiles> files) {
  if (files && files->reopened() && !reopen_noted) {
    reopen_noted = true;
    sample.snapshot.notes.push_back(fmt::format(
        "the open-file limit ({}) cannot keep 3 files open for every VM thread: the others' "
        "files are opened for each sample, which costs more; raise it (ulimit -n, "
        "LimitNOFILE=)",
        open_file_limit));
  }
  return files;
}

void Sampler::State::adopt(Vm&& vm) {
  if (vm.pid <= 0) return;  // a libvirt domain that is not running has no threads to sample
  VmState state{procfs::TaskDir(proc, vm.pid), {}, {}};
  std::vector<VmThread> kept;
  for (auto& thread : vm.threads) {
    ThreadSlot slot;
    slot.owner_pid = thread.role == ThreadRole::vhost ? thread.tid : vm.pid;
    int dir_fd = state.task_dir.fd();
    if (slot.owner_pid != vm.pid) {
      auto [it, _] = state.other_task_dirs.try_emplace(slot.owner_pid, proc, slot.owner_pid);
      dir_fd = it->second.fd();
    }
    // The snapshot has just read these files: keep them open without reading them again.
    slot.files =
        noted(procfs::ThreadFiles::keep(dir_fd, thread.tid, thread.facts.start_time_ticks, budget));
    if (!slot.files) continue;  // it exited since the snapshot
    kept.push_back(std::move(thread));
    state.slots.push_back(std::move(slot));
  }
  vm.threads = std::move(kept);
  sample.rates.emplace_back(vm.threads.size());
  for (std::size_t j = 0; j < vm.threads.size(); ++j) {
    sample.rates.back()[j] = thread_rates(nullptr, vm.threads[j].facts, 0, 0);
  }
  sample.snapshot.vms.push_back(std::move(vm));
  vms.push_back(std::move(state));
}

Status Sampler::State::first_sample() {
  auto snapshot = take_snapshot(options.snapshot);
  if (!snapshot) return snapshot.error();
  auto found = std::move(snapshot->vms);
  snapshot->vms.clear();
  sample.snapshot = std::move(*snapshot);
  for (auto& vm : found) adopt(std::move(vm));
  cpu_times = host.read_cpu_times();
  return Ok{};
}

void Sampler::State::discover() {
  std::unordered_set<int> known;
  for (const auto& vm : sample.snapshot.vms) known.insert(vm.pid);
  bool new_vm = false;
  for (const int pid : procfs.list_pids()) {
    if (known.contains(pid)) continue;
    if (identify_vm(procfs.read_argv(pid))) {
      new_vm = true;
      break;
    }
  }
  // Affinity changes by a syscall, not in the kept files: refresh it at discovery's pace.
  for (std::size_t i = 0; i < vms.size(); ++i) {
    auto& vm = sample.snapshot.vms[i];
    for (std::size_t j = 0; j < vm.threads.size(); ++j) {
      const auto& slot = vms[i].slots[j];
      const int dir_fd = slot.owner_pid == vm.pid ? vms[i].task_dir.fd()
                                                  : vms[i].other_task_dirs.at(slot.owner_pid).fd();
      vm.threads[j].facts.affinity = procfs::read_thread_affinity(dir_fd, vm.threads[j].tid, live);
    }
  }
  if (!new_vm) return;
  // A VM appeared: let the snapshot name its threads (thread names, libvirt, QMP) as `list`
  // does. Rare, so the full read is affordable.
  auto options_without_topology = options.snapshot;
  options_without_topology.with_topology = false;
  auto snapshot = take_snapshot(options_without_topology);
  if (!snapshot) return;
  for (auto& vm : snapshot->vms) {
    if (known.contains(vm.pid)) continue;
    sample.vms_started.push_back(vm.pid);
    adopt(std::move(vm));
  }
  for (auto& note : snapshot->notes) sample.snapshot.notes.push_back(std::move(note));
}

void Sampler::State::relist_threads(std::size_t index) {
  auto& vm = sample.snapshot.vms[index];
  auto& state = vms[index];
  const auto listed = state.task_dir.list_tids();
  const std::set<int> now(listed.begin(), listed.end());
  std::set<int> known;
  struct Entry {
    VmThread thread;
    ThreadSlot slot;
    ThreadRates rates;
  };
  std::vector<Entry> entries;
  for (std::size_t j = 0; j < vm.threads.size(); ++j) {
    auto& slot = state.slots[j];
    if (slot.owner_pid == vm.pid && !now.contains(vm.threads[j].tid)) continue;  // exited
    if (!slot.files) continue;
    known.insert(vm.threads[j].tid);
    entries.push_back({std::move(vm.threads[j]), std::move(slot), sample.rates[index][j]});
  }
  for (const int tid : now) {
    if (known.contains(tid)) continue;
    procfs::ParsedThread first;
    first.facts.affinity = procfs::read_thread_affinity(state.task_dir.fd(), tid, live);
    auto files = noted(procfs::ThreadFiles::open(state.task_dir.fd(), tid, first, texts, budget));
    if (!files) continue;
    VmThread thread;
    thread.tid = tid;
    // New threads are named as the snapshot names them; a VM whose vCPUs came from libvirt or
    // QMP does not grow vCPUs (no hot-plug support yet), so its new threads are emulator ones.
    const auto role = classify_thread(vm.hypervisor, first.name, tid, vm.pid);
    if (vm.vcpu_source == VcpuSource::thread_names || role.role != ThreadRole::vcpu) {
      thread.role = role.role;
      thread.vcpu = role.vcpu;
      thread.iothread = role.iothread;
    }
    thread.name = std::move(first.name);
    thread.facts = std::move(first.facts);
    const auto rates = thread_rates(nullptr, thread.facts, 0, 0);
    entries.push_back({std::move(thread), {std::move(files), vm.pid}, rates});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return thread_order(a.thread) < thread_order(b.thread);
  });
  vm.threads.clear();
  state.slots.clear();
  sample.rates[index].clear();
  for (auto& entry : entries) {
    vm.threads.push_back(std::move(entry.thread));
    state.slots.push_back(std::move(entry.slot));
    sample.rates[index].push_back(entry.rates);
  }
}

void Sampler::State::refresh_vm(std::size_t index, std::int64_t interval_ns) {
  auto& vm = sample.snapshot.vms[index];
  auto& state = vms[index];
  auto& rates = sample.rates[index];
  const long hz = sample.snapshot.clock_ticks_per_second;
  int own_threads = 0;
  bool exited = false;
  for (std::size_t j = 0; j < vm.threads.size(); ++j) {
    auto& thread = vm.threads[j];
    auto& slot = state.slots[j];
    if (slot.owner_pid == vm.pid) ++own_threads;
    if (!slot.files) continue;
    scratch.facts.affinity = CpuSet();
    const auto read = slot.files->read(scratch, texts);
    if (read == procfs::ThreadRead::exited) {
      slot.files.reset();
      exited = true;
      continue;
    }
    const bool fresh = read == procfs::ThreadRead::reused;
    rates[j] = thread_rates(fresh ? nullptr : &thread.facts, scratch.facts, interval_ns, hz);
    scratch.facts.affinity = std::move(thread.facts.affinity);
    thread.facts = std::move(scratch.facts);
    if (fresh) {
      // Another thread now has this tid: name and role start over with it.
      const auto role = classify_thread(vm.hypervisor, scratch.name, thread.tid, vm.pid);
      thread.role = role.role;
      thread.vcpu = role.vcpu;
      thread.iothread = role.iothread;
      thread.name = scratch.name;
    }
  }
  if (exited || state.task_dir.thread_count() != own_threads) relist_threads(index);
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
    for (std::size_t i = 0; i < state.vms.size(); ++i) state.refresh_vm(i, interval_ns);
    // A VM whose main thread is gone has exited (its pid may come back as another process).
    for (std::size_t i = state.vms.size(); i-- > 0;) {
      const auto& vm = sample.snapshot.vms[i];
      const bool alive = std::any_of(vm.threads.begin(), vm.threads.end(),
                                     [&](const VmThread& t) { return t.tid == vm.pid; });
      if (alive) continue;
      sample.vms_exited.push_back(vm.pid);
      sample.snapshot.vms.erase(sample.snapshot.vms.begin() + static_cast<std::ptrdiff_t>(i));
      sample.rates.erase(sample.rates.begin() + static_cast<std::ptrdiff_t>(i));
      state.vms.erase(state.vms.begin() + static_cast<std::ptrdiff_t>(i));
    }
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
