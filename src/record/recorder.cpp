#include "record/recorder.h"

#include <poll.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include <fmt/format.h>
#include "collect/sampling_loop.h"

#include "record/session.h"
#include "sources/bpf/event_ring.h"
#include "sources/perf/sched_tracer.h"

namespace vcpumap::record {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kFlushEvery = std::chrono::seconds(1);

Status record_sampled(const RecordOptions& options, Session& session, Sampler& sampler, int stop_fd,
                      const ProgressCallback& progress, std::string& reason) {
  LoopOptions loop;
  loop.start = session.start_time();
  loop.period = options.interval;
  if (options.duration) loop.duration = *options.duration;
  loop.stop_fd = stop_fd;
  auto last_flush = loop.start;
  auto last_progress = loop.start;
  auto end = run_sampling_loop(sampler, loop, [&](const Sample& sample) -> Result<bool> {
    session.add_sample(sample);
    const auto now = Clock::now();
    if (now - last_flush >= kFlushEvery) {
      if (auto status = session.flush(); !status) return status.error();
      last_flush = now;
    }
    if (now - last_progress >= std::chrono::seconds(1)) {
      progress(session.progress());
      last_progress = now;
    }
    return true;
  });
  if (!end) return end.error();
  reason = *end == LoopEnd::stopped ? "interrupted" : "duration reached";
  return Ok{};
}

}  // namespace

bool Session::wanted(const Vm& vm) const {
  if (options_.vms.empty()) return vm.pid > 0;
  return std::find(chosen_pids_.begin(), chosen_pids_.end(), vm.pid) != chosen_pids_.end();
}

Status Session::start(const Sample& sample) {
  for (const auto& spec : options_.vms) {
    auto vm = find_vm(sample.snapshot, spec);
    if (!vm) return vm.error();
    chosen_pids_.push_back((*vm)->pid);
  }
  start_mono_ = sample.snapshot.monotonic;
  HostBlock host;
  host.tool_version = options_.tool_version;
  host.source = sample.snapshot.source;
  utsname names{};
  if (::uname(&names) == 0) {
    host.hostname = names.nodename;
    host.kernel = names.release;
  }
  host.mode = options_.mode;
  host.interval_ns = static_cast<std::uint64_t>(options_.interval.count());
  host.start_wall_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(sample.snapshot.wall.time_since_epoch())
          .count();
  host.topology = sample.snapshot.topology;
  host.vm_filter = options_.vms;
  if (auto status = writer_.write(host); !status) return status;
  add_sample(sample);
  return flush();
}

void Session::add_sample(const Sample& sample) {
  SampleRecord record;
  record.time_ns =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, since_start(sample.snapshot.monotonic)));
  last_time_ns_ = std::max<std::int64_t>(last_time_ns_, static_cast<std::int64_t>(record.time_ns));
  tid_keys_.clear();
  int vcpus = 0;
  for (const Vm& vm : sample.snapshot.vms) {
    if (!wanted(vm)) continue;
    auto [vm_it, new_vm] =
        vm_keys_.try_emplace(vm.pid, static_cast<std::uint32_t>(vm_keys_.size()));
    if (new_vm) {
      identity_.vms.push_back({vm_it->second, vm.pid, vm.name, vm.uuid, vm.hypervisor});
    }
    for (const VmThread& thread : vm.threads) {
      const auto id = std::make_tuple(vm.pid, thread.tid, thread.facts.start_time_ticks);
      auto [it, added] =
          thread_keys_.try_emplace(id, static_cast<std::uint32_t>(thread_keys_.size()));
      if (added) {
        identity_.threads.push_back(
            {it->second, vm_it->second, thread.tid, thread.name, thread.role, thread.vcpu,
             thread.iothread, thread.facts.start_time_ticks, thread.facts.affinity.to_list()});
      }
      tid_keys_[thread.tid] = it->second;
      if (thread.role == ThreadRole::vcpu) ++vcpus;
      ThreadSample out{it->second,
                       thread.facts.last_cpu,
                       thread.facts.state,
                       thread.facts.cpu_time_ns,
                       thread.facts.run_delay_ns,
                       thread.facts.migrations};
      if (!out.cpu_time_ns && thread.facts.cpu_ticks()) {
        // Without schedstat, CPU time from stat's ticks: coarse, but not missing.
        out.cpu_time_ns =
            *thread.facts.cpu_ticks() * 1'000'000'000ull /
            static_cast<std::uint64_t>(std::max(1L, sample.snapshot.clock_ticks_per_second));
      }
      record.threads.push_back(out);
    }
  }
  if (!identity_.vms.empty() || !identity_.threads.empty()) identity_.time_ns = record.time_ns;
  vcpus_ = vcpus;
  samples_.samples.push_back(std::move(record));
  ++sample_count_;
}

void Session::add_event(const Event& event) {
  if (event.kind == EventKind::lost) lost_ += event.lost;
  last_time_ns_ = std::max<std::int64_t>(last_time_ns_, static_cast<std::int64_t>(event.time_ns));
  events_.events.push_back(event);
  ++event_count_;
}

Status Session::flush() {
  // Identities first: the samples and events after them name their threads by key.
  if (!identity_.vms.empty() || !identity_.threads.empty()) {
    if (auto status = writer_.write(identity_); !status) return status;
    identity_ = {};
  }
  if (!samples_.samples.empty()) {
    if (auto status = writer_.write(samples_); !status) return status;
    samples_.samples.clear();
  }
  if (!events_.events.empty()) {
    if (auto status = writer_.write(events_); !status) return status;
    events_.events.clear();
  }
  return Ok{};
}

Status Session::finish(const std::string& reason) {
  if (auto status = flush(); !status) return status;
  return writer_.write(EndBlock{static_cast<std::uint64_t>(last_time_ns_), sample_count_,
                                event_count_, lost_, reason});
}

RecordProgress Session::progress() const {
  RecordProgress progress;
  progress.elapsed_s = std::chrono::duration<double>(Clock::now() - start_mono_).count();
  progress.samples = sample_count_;
  progress.events = event_count_;
  progress.lost_events = lost_;
  progress.bytes = writer_.size();
  progress.vcpus = vcpus_;
  return progress;
}

namespace {

// Exact mode's events: the BPF ring (bpf, the default), else perf's tracepoints. --source procfs
// forces perf (no BPF at all); --source bpf forbids falling back. `note` says why perf, if it is.
Result<std::unique_ptr<EventSource>> open_event_source(const RecordOptions& options,
                                                       const Snapshot& snapshot,
                                                       std::string& note) {
  if (options.snapshot.source != SourceChoice::procfs) {
    auto ring = bpf::EventRing::open();
    if (ring) return std::unique_ptr<EventSource>(std::move(*ring));
    if (options.snapshot.source == SourceChoice::bpf) {
      return make_error(ExitCode::failure, "--source bpf: {}", ring.error().message);
    }
    note = fmt::format("sched events from perf tracepoints, which lose events here: {}",
                       ring.error().message);
  } else {
    note = "sched events from perf tracepoints (--source procfs), which may lose events";
  }
  auto tracepoints = perf::find_sched_tracepoints(options.snapshot.root);
  if (!tracepoints) return tracepoints.error();
  auto opened = perf::SchedTracer::open(*tracepoints, snapshot.topology.online, 256);
  if (!opened) return opened.error();
  return std::unique_ptr<EventSource>(std::move(*opened));
}

}  // namespace

Result<RecordProgress> run_recording(const RecordOptions& options, int stop_fd,
                                     const ProgressCallback& progress) {
  SamplerOptions sampler_options;
  sampler_options.snapshot = options.snapshot;
  // Exact mode samples once a second: enough to learn new threads and keep the counters.
  sampler_options.discovery_interval = std::chrono::seconds(1);
  Sampler sampler(std::move(sampler_options));
  auto first = sampler.sample();
  if (!first) return first.error();
  // Exact mode: open the event source before creating the file, so a host without one gets a
  // clear message and no empty recording.
  std::string event_note;
  auto tracer = options.mode == Mode::exact
                    ? open_event_source(options, (*first)->snapshot, event_note)
                    : Result<std::unique_ptr<EventSource>>(nullptr);
  if (!tracer) return tracer.error();
  if (*tracer) {
    if (auto watched = (*tracer)->watch_processes(vm_pids((*first)->snapshot)); !watched) {
      return watched.error();
    }
    if (auto enabled = (*tracer)->enable(); !enabled) return enabled.error();
  }
  // The first sample reads the topology and looks for VMs, which can take a while: time 0 is a
  // second, quick sample, taken just after the events start (see record_exact).
  first = sampler.sample();
  if (!first) return first.error();
  for (const auto& spec : options.vms) {  // an unknown VM: say so before making a file
    if (auto vm = find_vm((*first)->snapshot, spec); !vm) return vm.error();
  }
  auto writer = RecordingWriter::create(options.output);
  if (!writer) return writer.error();
  Session session(options, std::move(writer).value());
  if (auto status = session.start(**first); !status) return status.error();
  std::string reason;
  Status status = *tracer
                      ? record_exact(options, session, sampler, **tracer, stop_fd, progress, reason)
                      : record_sampled(options, session, sampler, stop_fd, progress, reason);
  if (!status) reason = "stopped by an error: " + status.error().message;
  // Close cleanly even after an error: what was recorded stays readable.
  const Status closed = session.finish(reason);
  RecordProgress last = session.progress();
  last.reason = reason;
  if (*tracer) last.event_source = std::string((*tracer)->name());
  last.event_source_note = event_note;
  progress(last);
  if (!status) return status.error();
  if (!closed) return closed.error();
  return last;
}

}  // namespace vcpumap::record
