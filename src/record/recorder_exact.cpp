// Exact mode: the sched tracepoints on every CPU, kept to the recorded VMs' threads in user
// space, merged across CPUs in time order, plus a sample a second (new threads, counters).
#include <algorithm>
#include <unordered_map>

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

// Where each recorded thread waits, and how many wait on each CPU: every switch on a CPU with a
// waiter is kept (the tasks it waits behind), and only while it has one. A thread waits from a
// wakeup onto a CPU or a switch-out still runnable, moves its wait when migrated, and stops when
// it runs or sleeps; a CPU going idle has nothing queued. The BPF engine counts by the same rule
// in the kernel (sched_events.bpf.c); the perf engine delivers every switch and this picks.
class WaitingCpus {
 public:
  void wait(int tid, int cpu) {
    leave(tid);
    where_[tid] = cpu;
    ++count_[cpu];
  }
  void leave(int tid) {
    const auto found = where_.find(tid);
    if (found == where_.end()) return;
    if (const auto count = count_.find(found->second);
        count != count_.end() && --count->second <= 0) {
      count_.erase(count);
    }
    where_.erase(found);
  }
  void idle(int cpu) {
    std::erase_if(where_, [cpu](const auto& entry) { return entry.second == cpu; });
    count_.erase(cpu);
  }
  bool waits(int tid) const { return where_.count(tid) != 0; }
  bool waited_on(int cpu) const { return count_.count(cpu) != 0; }

 private:
  std::unordered_map<int, int> where_;  // tid -> CPU
  std::unordered_map<int, int> count_;  // CPU -> waiters, > 0
};

// Turns kernel events into recorded events of the VMs' threads, and the switches of the CPUs
// where they may wait; the rest are dropped here.
void keep_vm_events(const Session& session, const std::vector<SchedEvent>& raw,
                    std::vector<Event>& pending, std::int64_t& last_time, WaitingCpus& waiting) {
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
        if (prev == nullptr && next == nullptr && !waiting.waited_on(in.cpu)) break;
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
        if (next != nullptr) waiting.leave(in.next_pid);
        if (prev != nullptr && switch_state(in.prev_state) == 'R') {
          waiting.wait(in.prev_pid, in.cpu);
        } else if (prev != nullptr) {
          waiting.leave(in.prev_pid);
        }
        if (in.next_pid == 0) waiting.idle(in.cpu);
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
        }
        if (session.key_of(in.pid) && waiting.waits(in.pid)) waiting.wait(in.pid, in.dest_cpu);
        break;
      case SchedEvent::Kind::wakeup:
        if (const auto* key = session.key_of(in.pid)) {
          event.kind = EventKind::wakeup;
          event.key = *key;
          event.cpu = in.target_cpu;
          pending.push_back(event);
          waiting.wait(in.pid, in.target_cpu);
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
  WaitingCpus waiting;
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
    keep_vm_events(session, raw, pending, last_time, waiting);
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
