// Exact mode: the sched tracepoints on every CPU, kept to the recorded VMs' threads in user
// space, merged across CPUs in time order, plus a sample a second (new threads, counters).
#include <algorithm>

#include "collect/sampling_loop.h"
#include "record/session.h"

namespace vcpumap::record {
namespace {

using Clock = std::chrono::steady_clock;

// Events sit this long before being written: a ring read now may still lack an earlier event of
// another CPU, and blocks must be in time order across CPUs.
constexpr std::int64_t kHoldbackNs = 200'000'000;
constexpr std::size_t kEventsPerBlock = 8192;

// The state letter of sched_switch's prev_state: the low 7 bits are S D T t X Z P (the kernel's
// __trace_sched_switch_state); none set means it was preempted while runnable.
char switch_state(std::int64_t prev_state) {
  static constexpr char kLetters[] = "SDTtXZP";
  for (int bit = 0; bit < 7; ++bit) {
    if (prev_state & (std::int64_t{1} << bit)) return kLetters[bit];
  }
  return 'R';
}

Peer peer_of(int tid, const SchedTaskInfo& info) {
  return {tid, info.tgid, info.comm, info.cgroup, info.kernel_thread};
}

// CPUs where a recorded thread may wait: every switch there is kept (the tasks it waited behind)
// until the CPU goes idle, which it does only with nothing runnable, or runs a recorded thread. The
// BPF engine filters by the same rule in the kernel; the perf engine delivers every switch and this
// picks.
class ArmedCpus {
 public:
  void arm(int cpu) {
    if (cpu < 0 || cpu >= kMaxCpu) return;
    if (static_cast<std::size_t>(cpu) >= armed_.size()) armed_.resize(cpu + 1, false);
    armed_[cpu] = true;
  }
  void disarm(int cpu) {
    if (cpu >= 0 && static_cast<std::size_t>(cpu) < armed_.size()) armed_[cpu] = false;
  }
  bool armed(int cpu) const {
    return cpu >= 0 && static_cast<std::size_t>(cpu) < armed_.size() && armed_[cpu];
  }

 private:
  static constexpr int kMaxCpu = 1 << 16;
  std::vector<bool> armed_;
};

// Turns kernel events into recorded events of the VMs' threads, and the switches of the CPUs
// where they may wait; the rest are dropped here.
void keep_vm_events(const Session& session, const std::vector<SchedEvent>& raw,
                    std::vector<Event>& pending, std::int64_t& last_time, ArmedCpus& armed) {
  for (const SchedEvent& in : raw) {
    const std::int64_t time = in.time_ns ? session.since_start_ns(in.time_ns) : last_time;
    if (time < 0) continue;
    last_time = std::max(last_time, time);
    Event event;
    event.time_ns = static_cast<std::uint64_t>(time);
    event.cpu = in.cpu;
    switch (in.kind) {
      case SchedEvent::Kind::sched_switch: {
        const auto* prev = session.key_of(in.prev_pid);
        const auto* next = session.key_of(in.next_pid);
        if (prev == nullptr && next == nullptr && !armed.armed(in.cpu)) break;
        event.has_peer = true;
        if (prev != nullptr) {
          event.kind = EventKind::switch_out;
          event.key = *prev;
          event.state = switch_state(in.prev_state);
          event.peer = peer_of(in.next_pid, in.next);
          pending.push_back(event);
        }
        if (next != nullptr) {
          event.kind = EventKind::switch_in;
          event.key = *next;
          event.peer = peer_of(in.prev_pid, in.prev);
          pending.push_back(event);
        }
        if (prev == nullptr && next == nullptr) {
          event.kind = EventKind::cpu_switch;
          event.peer = peer_of(in.next_pid, in.next);
          pending.push_back(event);
        }
        // As the BPF programs do: disarmed by idle or a recorded thread running, armed again by
        // one preempted.
        if (in.next_pid == 0 || next != nullptr) armed.disarm(in.cpu);
        if (prev != nullptr && switch_state(in.prev_state) == 'R') armed.arm(in.cpu);
        break;
      }
      case SchedEvent::Kind::migrate:
        // The kernel counts se.nr_migrations only when the CPU really changes.
        if (const auto* key = session.key_of(in.pid); key && in.orig_cpu != in.dest_cpu) {
          event.kind = EventKind::migrate;
          event.key = *key;
          event.cpu = in.dest_cpu;
          event.orig_cpu = in.orig_cpu;
          pending.push_back(event);
          armed.arm(in.dest_cpu);
        }
        break;
      case SchedEvent::Kind::wakeup:
        if (const auto* key = session.key_of(in.pid)) {
          event.kind = EventKind::wakeup;
          event.key = *key;
          event.cpu = in.target_cpu;
          pending.push_back(event);
          armed.arm(in.target_cpu);
        }
        break;
      case SchedEvent::Kind::lost:
        event.kind = EventKind::lost;
        event.lost = in.lost;
        pending.push_back(event);
        break;
    }
  }
}

}  // namespace

std::vector<int> vm_pids(const Snapshot& snapshot) {
  std::vector<int> pids;
  for (const auto& vm : snapshot.vms) {
    if (vm.pid != 0) pids.push_back(vm.pid);
  }
  return pids;
}

namespace {

// Moves events older than `before` (all when before < 0) into the session, in time order.
void release(Session& session, std::vector<Event>& pending, std::int64_t before) {
  std::stable_sort(pending.begin(), pending.end(),
                   [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
  std::size_t n = 0;
  while (n < pending.size() &&
         (before < 0 || static_cast<std::int64_t>(pending[n].time_ns) < before)) {
    session.add_event(pending[n++]);
  }
  pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace

Status record_exact(const RecordOptions& options, Session& session, Sampler& sampler,
                    EventSource& tracer, int stop_fd, const ProgressCallback& progress,
                    std::string& reason) {
  const auto start = session.start_time();
  // The tracer was enabled before the sample at time 0: events before it are dropped below (their
  // time is negative), so the events and the samples' counters cover one window.
  std::vector<SchedEvent> raw;
  std::vector<Event> pending;
  std::int64_t last_time = 0;
  ArmedCpus armed;
  // A sample each second, on the one sampling clock: the counters the events are checked against.
  Ticker samples(std::chrono::seconds(1), start);
  auto last_flush = Clock::now();
  auto last_progress = last_flush;
  for (;;) {
    const auto now = Clock::now();
    const bool ends = options.duration && now - start >= *options.duration;
    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(samples.next() - now);
    if (options.duration) {
      wait_ms = std::min(wait_ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      start + *options.duration - now));
    }
    bool stop = false;
    if (!ends) {
      auto woke =
          tracer.wait(static_cast<int>(std::clamp<std::int64_t>(wait_ms.count(), 0, 100)), stop_fd);
      if (!woke) return woke.error();
      stop = *woke;
    }
    raw.clear();
    tracer.drain(raw);
    keep_vm_events(session, raw, pending, last_time, armed);
    if (stop || ends) {
      release(session, pending, -1);
      reason = stop ? "interrupted" : "duration reached";
      // A last sample: the counters at the end, for the report and for cross-checks.
      if (auto sample = sampler.sample()) session.add_sample(**sample);
      return Ok{};
    }
    release(session, pending, session.since_start(Clock::now()) - kHoldbackNs);
    if (Clock::now() >= samples.next()) {
      auto sample = sampler.sample();
      if (!sample) return sample.error();
      session.add_sample(**sample);
      if (auto watched = tracer.watch_processes(vm_pids((*sample)->snapshot)); !watched) {
        return watched;
      }
      samples.advance();
    }
    if (session.buffered_events() >= kEventsPerBlock ||
        Clock::now() - last_flush >= std::chrono::seconds(1)) {
      if (auto status = session.flush(); !status) return status;
      last_flush = Clock::now();
    }
    if (Clock::now() - last_progress >= std::chrono::seconds(1)) {
      progress(session.progress());
      last_progress = Clock::now();
    }
  }
}

}  // namespace vcpumap::record
