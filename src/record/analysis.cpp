#include "record/analysis.h"

#include <algorithm>
#include <unordered_map>

#include "collect/delay_split.h"
#include "record/file.h"
#include "record/replay.h"

namespace vcpumap::record {

std::string_view to_string(MigrationSource source) {
  switch (source) {
    case MigrationSource::tracepoint:
      return "tracepoint";
    case MigrationSource::nr_migrations:
      return "nr_migrations";
    case MigrationSource::observed:
      return "observed";
  }
  return "observed";
}

std::map<int, double> ThreadReport::residency(const std::vector<int>& cpus) const {
  std::map<int, double> shares;
  std::uint64_t samples = 0;
  for (auto n : samples_on) samples += n;
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    double share = 0;
    if (on_cpu_ns > 0) {
      share = double(residency_ns[i]) / double(on_cpu_ns);
    } else if (samples > 0) {
      share = double(samples_on[i]) / double(samples);
    }
    if (share > 0) shares[cpus[i]] = share;
  }
  return shares;
}

namespace {

// Per thread, what the samples and the events have told so far.
struct ThreadState {
  ThreadReport report;
  bool is_vcpu = false;
  std::uint64_t first_seen_ns = 0;
  // From samples.
  bool have_sample = false;
  std::uint64_t sample_time = 0;
  int sample_cpu = -1;
  std::optional<std::uint64_t> cpu_time, run_delay, migrations;
  std::vector<std::uint64_t> sampled_residency;
  std::uint64_t sampled_on_cpu = 0, sampled_migrations = 0, sampled_delay = 0;
  bool delay_known = false, counter_known = false;
  std::uint64_t c_core = 0, c_package = 0, c_node = 0;  // sampled crossings
  int stay_cpu = -1;
  std::uint64_t stay_since = 0, stay_last = 0;
  // From events.
  bool saw_switch = false, running = false;
  std::uint64_t run_since = 0;
  int run_cpu = -1;
  std::optional<std::uint64_t> runnable_since;
  std::vector<std::uint64_t> event_residency;
  std::uint64_t event_on_cpu = 0, event_migrations = 0, event_delay = 0;
  std::uint64_t e_core = 0, e_package = 0, e_node = 0;
  int event_stay_cpu = -1;
  std::uint64_t event_stay_since = 0;
  std::uint64_t event_longest = 0;
  int event_longest_cpu = -1;
};

}  // namespace

struct Analyzer::State {
  HostBlock host;
  std::uint64_t duration = 0;
  Report report;
  std::vector<int> index_of;  // CPU number -> lane index, -1 when not a lane
  std::map<std::uint32_t, VmIdentity> vms;
  std::unordered_map<std::uint32_t, ThreadState> threads;
  std::vector<std::uint32_t> order;  // keys in the order first seen

  int lane(int cpu) const {
    return cpu >= 0 && cpu < static_cast<int>(index_of.size()) ? index_of[cpu] : -1;
  }
  const Cpu* cpu_info(int cpu) const { return host.topology.find(cpu); }

  void count_crossing(int from, int to, std::uint64_t& core, std::uint64_t& package,
                      std::uint64_t& node) const {
    const Cpu* a = cpu_info(from);
    const Cpu* b = cpu_info(to);
    if (!a || !b) return;
    if (a->package != b->package) ++package;
    if (a->package != b->package || a->core != b->core) ++core;
    if (a->node != b->node) ++node;
  }

  // Spreads `ns` of CPU time over [from, to) into the timeline lane of `cpu`.
  void paint(std::uint32_t key, int cpu, std::uint64_t from, std::uint64_t to, std::uint64_t ns) {
    const int index = lane(cpu);
    if (index < 0 || to <= from || ns == 0) return;
    auto& cells = report.timeline.cells;
    const std::uint64_t bucket_ns = report.timeline.bucket_ns;
    const std::uint64_t span = to - from;
    for (std::uint64_t b = from / bucket_ns; b < cells.size() && b * bucket_ns < to; ++b) {
      const std::uint64_t lo = std::max(from, b * bucket_ns);
      const std::uint64_t hi = std::min(to, (b + 1) * bucket_ns);
      const std::uint64_t part = span == ns ? hi - lo : ns * (hi - lo) / span;
      if (part == 0) continue;
      auto& list = cells[b][index];
      auto it = std::find_if(list.begin(), list.end(), [&](auto& c) { return c.key == key; });
      if (it == list.end()) {
        list.push_back({key, part});
      } else {
        it->ns += part;
      }
    }
  }

  void on_identity(const IdentityBlock& block) {
    for (const auto& vm : block.vms) vms[vm.key] = vm;
    for (const auto& thread : block.threads) {
      ThreadState& state = threads[thread.key];
      state.report.key = thread.key;
      state.report.tid = thread.tid;
      state.report.name = thread.name;
      state.report.role = thread.role;
      state.report.vcpu = thread.vcpu;
      state.is_vcpu = thread.role == ThreadRole::vcpu;
      state.first_seen_ns = block.time_ns;
      state.sampled_residency.assign(report.cpus.size(), 0);
      state.event_residency.assign(report.cpus.size(), 0);
      state.report.samples_on.assign(report.cpus.size(), 0);
      order.push_back(thread.key);
      thread_vm[thread.key] = thread.vm_key;
    }
  }
  std::unordered_map<std::uint32_t, std::uint32_t> thread_vm;

  void on_sample(const SampleRecord& sample) {
    ++report.samples;
    for (const ThreadSample& now : sample.threads) {
      auto it = threads.find(now.key);
      if (it == threads.end()) continue;
      ThreadState& t = it->second;
      if (const int index = lane(now.cpu); index >= 0) ++t.report.samples_on[index];
      if (t.have_sample && sample.time_ns > t.sample_time) {
        const std::uint64_t ran = now.cpu_time_ns && t.cpu_time && *now.cpu_time_ns > *t.cpu_time
                                      ? *now.cpu_time_ns - *t.cpu_time
                                      : 0;
        // Between two samples it was on the earlier CPU, the later one, or both: split evenly
        // when they differ (the samples can't tell more).
        auto credit = [&](int cpu, std::uint64_t ns) {
          if (const int index = lane(cpu); index >= 0) t.sampled_residency[index] += ns;
          if (t.is_vcpu && host.mode == Mode::sampled)
            paint(t.report.key, cpu, t.sample_time, sample.time_ns, ns);
        };
        if (now.cpu == t.sample_cpu) {
          credit(now.cpu, ran);
        } else {
          credit(t.sample_cpu, ran / 2);
          credit(now.cpu, ran - ran / 2);
        }
        t.sampled_on_cpu += ran;
        std::uint64_t moved = 0;
        if (now.migrations && t.migrations) {
          moved = *now.migrations - *t.migrations;
          t.counter_known = true;
        } else {
          moved = now.cpu != t.sample_cpu ? 1 : 0;
        }
        t.sampled_migrations += moved;
        if (now.cpu != t.sample_cpu) {
          count_crossing(t.sample_cpu, now.cpu, t.c_core, t.c_package, t.c_node);
        }
        if (now.run_delay_ns && t.run_delay) {
          t.sampled_delay += *now.run_delay_ns - *t.run_delay;
          t.delay_known = true;
        }
        if (now.cpu == t.stay_cpu && moved == 0) {
          t.stay_last = sample.time_ns;
        } else {
          t.stay_cpu = now.cpu;
          t.stay_since = t.stay_last = sample.time_ns;
        }
      } else if (!t.have_sample) {
        t.stay_cpu = now.cpu;
        t.stay_since = t.stay_last = sample.time_ns;
      }
      if (t.stay_last - t.stay_since >= t.report.longest_stay_ns) {
        t.report.longest_stay_ns = t.stay_last - t.stay_since;
        t.report.longest_stay_cpu = t.stay_cpu;
      }
      t.have_sample = true;
      t.sample_time = sample.time_ns;
      t.sample_cpu = now.cpu;
      if (now.cpu_time_ns) t.cpu_time = now.cpu_time_ns;
      if (now.run_delay_ns) t.run_delay = now.run_delay_ns;
      if (now.migrations) t.migrations = now.migrations;
    }
  }

  void end_run(ThreadState& t, std::uint64_t time) {
    if (!t.running || time < t.run_since) return;
    const std::uint64_t ns = time - t.run_since;
    if (const int index = lane(t.run_cpu); index >= 0) t.event_residency[index] += ns;
    t.event_on_cpu += ns;
    if (t.is_vcpu) paint(t.report.key, t.run_cpu, t.run_since, time, ns);
    t.running = false;
  }

  void end_stay(ThreadState& t, std::uint64_t time) {
    if (t.event_stay_cpu >= 0 && time - t.event_stay_since >= t.event_longest) {
      t.event_longest = time - t.event_stay_since;
      t.event_longest_cpu = t.event_stay_cpu;
    }
  }

  void on_event(const Event& event) {
    ++report.events;
    if (event.kind == EventKind::lost) {
      report.lost_events += event.lost;
      report.lost_by_cpu[event.cpu] += event.lost;
      return;
    }
    if (event.kind == EventKind::cpu_switch) return;  // only the culprit split reads it
    auto it = threads.find(event.key);
    if (it == threads.end()) return;
    ThreadState& t = it->second;
    if (t.event_stay_cpu < 0) {
      t.event_stay_cpu = t.sample_cpu >= 0 ? t.sample_cpu : event.cpu;
      t.event_stay_since = t.first_seen_ns;
    }
    switch (event.kind) {
      case EventKind::switch_in:
        t.saw_switch = true;
        if (t.runnable_since && event.time_ns >= *t.runnable_since) {
          t.event_delay += event.time_ns - *t.runnable_since;
        }
        t.runnable_since.reset();
        t.running = true;
        t.run_since = event.time_ns;
        t.run_cpu = event.cpu;
        if (event.cpu != t.event_stay_cpu) {  // a move whose migrate event was lost
          end_stay(t, event.time_ns);
          t.event_stay_cpu = event.cpu;
          t.event_stay_since = event.time_ns;
        }
        break;
      case EventKind::switch_out:
        if (!t.saw_switch) {
          // First seen leaving a CPU: it had been running there since it was first seen.
          t.running = true;
          t.run_since = t.first_seen_ns;
          t.run_cpu = event.cpu;
        }
        t.saw_switch = true;
        end_run(t, event.time_ns);
        if (event.state == 'R') t.runnable_since = event.time_ns;  // preempted: waits again
        break;
      case EventKind::wakeup:
        if (!t.running) t.runnable_since = event.time_ns;
        break;
      case EventKind::migrate:
        ++t.event_migrations;
        count_crossing(event.orig_cpu, event.cpu, t.e_core, t.e_package, t.e_node);
        end_stay(t, event.time_ns);
        t.event_stay_cpu = event.cpu;
        t.event_stay_since = event.time_ns;
        break;
      case EventKind::lost:
      case EventKind::cpu_switch:
        break;
    }
  }
};

Analyzer::Analyzer(const HostBlock& host, std::uint64_t duration_ns, const AnalysisOptions& options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.host = host;
  s.duration = duration_ns;
  s.report.host = host;
  s.report.duration_ns = duration_ns;
  for (const Cpu& cpu : host.topology.cpus) {
    if (!cpu.online) continue;
    s.report.cpus.push_back(cpu.cpu);
  }
  std::sort(s.report.cpus.begin(), s.report.cpus.end());
  for (std::size_t i = 0; i < s.report.cpus.size(); ++i) {
    const int cpu = s.report.cpus[i];
    if (cpu >= static_cast<int>(s.index_of.size())) s.index_of.resize(cpu + 1, -1);
    s.index_of[cpu] = static_cast<int>(i);
  }
  // Buckets no finer than the sampling interval (sampled) or 1 ms (exact).
  const std::uint64_t finest =
      host.mode == Mode::sampled && host.interval_ns ? host.interval_ns : 1'000'000;
  const std::uint64_t buckets = std::max<std::uint64_t>(1, options.max_buckets);
  std::uint64_t bucket_ns = std::max(finest, (duration_ns + buckets - 1) / buckets);
  s.report.timeline.bucket_ns = bucket_ns;
  const std::uint64_t count = std::max<std::uint64_t>(1, (duration_ns + bucket_ns - 1) / bucket_ns);
  s.report.timeline.cells.assign(count,
                                 std::vector<std::vector<TimelineCell>>(s.report.cpus.size()));
}

Analyzer::~Analyzer() = default;

void Analyzer::add(const Block& block) {
  State& s = *state_;
  if (const auto* identity = std::get_if<IdentityBlock>(&block)) s.on_identity(*identity);
  if (const auto* samples = std::get_if<SampleBlock>(&block)) {
    for (const auto& sample : samples->samples) s.on_sample(sample);
  }
  if (const auto* events = std::get_if<EventBlock>(&block)) {
    for (const auto& event : events->events) s.on_event(event);
  }
  if (const auto* end = std::get_if<EndBlock>(&block)) s.report.end_reason = end->reason;
}

Report Analyzer::finish() {
  State& s = *state_;
  const bool exact = s.host.mode == Mode::exact;
  std::map<std::uint32_t, VmReport> vms;
  for (const auto& [key, vm] : s.vms) {
    vms[key] = VmReport{vm.key, vm.pid, vm.name, vm.uuid, {}, {}};
  }
  for (std::uint32_t key : s.order) {
    ThreadState& t = s.threads[key];
    ThreadReport& r = t.report;
    if (exact && t.saw_switch) {
      s.end_run(t, s.duration);
      r.residency_ns = t.event_residency;
      r.on_cpu_ns = t.event_on_cpu;
      r.run_delay_ns = t.event_delay;
    } else {
      r.residency_ns = t.sampled_residency;
      r.on_cpu_ns = t.sampled_on_cpu;
      if (t.delay_known) r.run_delay_ns = t.sampled_delay;
    }
    if (t.delay_known) r.schedstat_delay_ns = t.sampled_delay;
    if (exact) {
      s.end_stay(t, s.duration);
      r.migration_events = t.event_migrations;
      if (t.counter_known) r.migrations_counted = t.sampled_migrations;
      r.migrations = r.migrations_disagree() ? *r.migrations_counted : t.event_migrations;
      r.migrations_source =
          r.migrations_disagree() ? MigrationSource::nr_migrations : MigrationSource::tracepoint;
      r.crossed_core = t.e_core;
      r.crossed_package = t.e_package;
      r.crossed_node = t.e_node;
      if (t.event_stay_cpu < 0) {  // no event at all: it stayed where the samples saw it
        t.event_longest = s.duration - t.first_seen_ns;
        t.event_longest_cpu = t.sample_cpu;
      }
      r.longest_stay_ns = t.event_longest;
      r.longest_stay_cpu = t.event_longest_cpu;
    } else {
      r.migrations = t.sampled_migrations;
      r.migrations_source =
          t.counter_known ? MigrationSource::nr_migrations : MigrationSource::observed;
      r.crossed_core = t.c_core;
      r.crossed_package = t.c_package;
      r.crossed_node = t.c_node;
    }
    auto vm = vms.find(s.thread_vm[key]);
    if (vm == vms.end()) continue;
    (t.is_vcpu ? vm->second.vcpus : vm->second.others).push_back(r);
  }
  for (auto& [key, vm] : vms) {
    std::stable_sort(vm.vcpus.begin(), vm.vcpus.end(),
                     [](const ThreadReport& a, const ThreadReport& b) { return a.vcpu < b.vcpu; });
    for (std::size_t i = 0; i < vm.vcpus.size(); ++i) {
      s.report.vcpu_of_key[vm.vcpus[i].key] = {static_cast<int>(s.report.vms.size()),
                                               static_cast<int>(i)};
    }
    s.report.vms.push_back(std::move(vm));
  }
  for (auto& bucket : s.report.timeline.cells) {
    for (auto& cell : bucket) {
      std::sort(cell.begin(), cell.end(), [](auto& a, auto& b) { return a.ns > b.ns; });
    }
  }
  return std::move(s.report);
}

Status split_delays(const std::filesystem::path& path, Report& report) {
  auto replay = ReplaySource::open(path);
  if (!replay) return replay.error();
  DelaySplitter splitter;
  std::size_t watched = 0;
  std::vector<SchedEvent> events;
  while (!(*replay)->done()) {
    events.clear();
    (*replay)->drain(events);  // one block: a thread is known before its first event
    const auto& threads = (*replay)->threads();
    for (; watched < threads.size(); ++watched) {
      if (threads[watched].role == ThreadRole::vcpu) splitter.watch_vcpu(threads[watched].tid);
    }
    for (const SchedEvent& event : events) splitter.add(event);
  }
  KnownThreads known;
  for (const ThreadIdentity& thread : (*replay)->threads()) {
    const VmIdentity* vm = (*replay)->vm(thread.vm_key);
    if (vm == nullptr) continue;
    const std::string name = vm->name.empty() ? "pid " + std::to_string(vm->pid) : vm->name;
    known[thread.tid] = {name, vm->pid, thread.role, thread.vcpu, thread.tid, thread.iothread};
  }
  const auto pairs = splitter.pairs();
  for (VmReport& vm : report.vms) {
    for (ThreadReport& vcpu : vm.vcpus) {
      vcpu.delay = split_vcpu_delay(vcpu.vcpu, vcpu.tid, pairs, known, vcpu.schedstat_delay_ns);
    }
  }
  report.has_delay_split = true;
  return Ok{};
}

Result<Report> analyze_file(const std::filesystem::path& path, const AnalysisOptions& options) {
  auto first = RecordingReader::open(path);
  if (!first) return first.error();
  std::optional<HostBlock> host;
  std::uint64_t last = 0;
  while (auto block = first->next()) {
    if (auto* h = std::get_if<HostBlock>(&*block)) host = *h;
    if (auto* samples = std::get_if<SampleBlock>(&*block)) {
      for (auto& sample : samples->samples) last = std::max(last, sample.time_ns);
    }
    if (auto* events = std::get_if<EventBlock>(&*block)) {
      for (auto& event : events->events) last = std::max(last, event.time_ns);
    }
    if (auto* end = std::get_if<EndBlock>(&*block)) last = std::max(last, end->time_ns);
  }
  if (!host) {
    return make_error(ExitCode::bad_input, "{}: no complete host block: nothing to report ({})",
                      path.string(), first->problem().empty() ? "empty" : first->problem());
  }
  Analyzer analyzer(*host, last, options);
  auto second = RecordingReader::open(path);
  if (!second) return second.error();
  while (auto block = second->next()) analyzer.add(*block);
  Report report = analyzer.finish();
  report.problem = second->problem();
  if (host->mode == Mode::exact && second->version() >= 2) {
    if (auto split = split_delays(path, report); !split) return split.error();
  }
  return report;
}

}  // namespace vcpumap::record
