// synth_recording: writes a large, real-looking recording without a host that big, through the
// same RecordingWriter the recorder uses, so `vcpumap report` can be measured and tested at the
// size issue 5 asks for (an hour of 64 vCPUs).
//
//   synth_recording -o FILE [--duration S] [--interval MS] [--packages P] [--cores C] [--smt T]
//                   [--vms N] [--vcpus V] [--exact] [--switch-rate R] [--seed N]
//
//   --duration S      seconds recorded (default 3600)
//   --interval MS     sampling interval in ms (default 100, the recorder's default)
//   --packages P      sockets, one NUMA node each (default 2)
//   --cores C         cores per package (default 16)
//   --smt T           threads per core (default 2): 2 x 16 x 2 = 64 CPUs, numbered as Linux
//                     numbers an Intel host (siblings of CPUs 0..31 are 32..63)
//   --vms N           VMs (default 8), each with V vCPUs (default 8), a main thread, a call_rcu
//                     thread and an I/O thread
//   --exact           an exact-mode file: switch-in/out, wakeup and migrate events of every
//                     vCPU, plus one sample a second as the recorder writes
//   --switch-rate R   exact mode: times a second each vCPU is switched in (default 200)
//   --seed N          the random seed (default 1): the same arguments give the same file
//
// VM 0 is pinned one vCPU per CPU (it never moves); the others float. A floating vCPU has a
// home CPU in its VM's package, stays there for seconds, and when it moves goes to its SMT
// sibling or another core of the same package, now and then to the other package, and half the
// time back home (as the scheduler's wake affinity and load balancing do). Each vCPU has its own
// load (10% to 95%), so bars differ. Prints the totals on stdout.
#include <fmt/core.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "record/file.h"

namespace {

using namespace vcpumap;
using namespace vcpumap::record;

struct Options {
  std::string output;
  double duration_s = 3600;
  double interval_ms = 100;
  int packages = 2, cores = 16, smt = 2;
  int vms = 8, vcpus = 8;
  bool exact = false;
  double switch_rate = 200;
  unsigned seed = 1;
};

[[noreturn]] void usage(std::string_view problem) {
  fmt::print(stderr,
             "synth_recording: {}\nusage: synth_recording -o FILE [--duration S] [--interval MS] "
             "[--packages P] [--cores C] [--smt T] [--vms N] [--vcpus V] [--exact] "
             "[--switch-rate R] [--seed N]\n",
             problem);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--exact") {
      options.exact = true;
      continue;
    }
    if (i + 1 >= argc) usage(fmt::format("{} needs a value", arg));
    const char* value = argv[++i];
    char* end = nullptr;
    const double number = std::strtod(value, &end);
    const bool numeric = end != value && *end == '\0' && number >= 0;
    if (arg == "-o") {
      options.output = value;
      continue;
    }
    if (!numeric) usage(fmt::format("{} {}: not a number", arg, value));
    if (arg == "--duration") {
      options.duration_s = number;
    } else if (arg == "--interval") {
      options.interval_ms = number;
    } else if (arg == "--packages") {
      options.packages = int(number);
    } else if (arg == "--cores") {
      options.cores = int(number);
    } else if (arg == "--smt") {
      options.smt = int(number);
    } else if (arg == "--vms") {
      options.vms = int(number);
    } else if (arg == "--vcpus") {
      options.vcpus = int(number);
    } else if (arg == "--switch-rate") {
      options.switch_rate = number;
    } else if (arg == "--seed") {
      options.seed = unsigned(number);
    } else {
      usage(fmt::format("unknown option {}", arg));
    }
  }
  if (options.output.empty()) usage("-o FILE is required");
  if (options.packages < 1 || options.cores < 1 || options.smt < 1 || options.vms < 1 ||
      options.vcpus < 1 || options.interval_ms <= 0 || options.duration_s <= 0) {
    usage("sizes, the interval and the duration must be positive");
  }
  return options;
}

// Linux's numbering of a multi-socket SMT host: CPU = thread * (packages * cores) + package *
// cores + core, so the first `packages * cores` CPUs are one thread of each core.
Topology make_topology(const Options& options) {
  Topology topology;
  const int per_thread = options.packages * options.cores;
  const int count = per_thread * options.smt;
  for (int cpu = 0; cpu < count; ++cpu) {
    Cpu info;
    info.cpu = cpu;
    info.package = (cpu % per_thread) / options.cores;
    info.core = cpu % options.cores;
    info.node = info.package;
    for (int t = 0; t < options.smt; ++t) info.siblings.add(cpu % per_thread + t * per_thread);
    topology.cpus.push_back(info);
    topology.present.add(cpu);
    topology.possible.add(cpu);
    topology.online.add(cpu);
  }
  for (int package = 0; package < options.packages; ++package) {
    NumaNode node{package, {}};
    for (const Cpu& cpu : topology.cpus) {
      if (cpu.package == package) node.cpus.add(cpu.cpu);
    }
    topology.nodes.push_back(node);
  }
  topology.packages = options.packages;
  topology.cores = options.packages * options.cores;
  topology.threads_per_core = options.smt;
  topology.model_name = "Synthetic Xeon (tests/tools/synth_recording)";
  return topology;
}

// One recorded thread and what the kernel would show of it.
struct SynthThread {
  std::uint32_t key = 0;
  bool is_vcpu = false;
  bool pinned = false;
  int home = 0;  // the CPU it returns to
  int cpu = 0;
  double load = 0.5;  // share of the time it runs
  std::uint64_t cpu_time = 0, run_delay = 0, migrations = 0;
};

class Synth {
 public:
  explicit Synth(const Options& options)
      : options_(options), topology_(make_topology(options)), random_(options.seed) {}

  int cpu_count() const { return int(topology_.cpus.size()); }

  HostBlock host() const {
    HostBlock host;
    host.tool_version = "synth_recording";
    host.hostname = "synth-host";
    host.kernel = "6.1.0-synthetic";
    host.mode = options_.exact ? Mode::exact : Mode::sampled;
    host.interval_ns = options_.exact ? 1'000'000'000 : interval_ns();
    host.start_wall_ns = 1'767'225'600'000'000'000;  // 2026-01-01
    host.topology = topology_;
    return host;
  }

  IdentityBlock identity() {
    IdentityBlock block;
    const int per_thread = options_.packages * options_.cores;
    for (int v = 0; v < options_.vms; ++v) {
      const int pid = 4000 + v * 100;
      block.vms.push_back({std::uint32_t(v), pid, fmt::format("synth-vm-{:02}", v),
                           fmt::format("5a1e0000-0000-4000-8000-{:012}", v), Hypervisor::qemu});
      const int package = v % options_.packages;
      auto add = [&](ThreadRole role, int vcpu, std::string name, int tid) {
        SynthThread thread;
        thread.key = std::uint32_t(threads_.size());
        thread.is_vcpu = role == ThreadRole::vcpu;
        thread.pinned = v == 0;
        thread.home = thread.cpu = home_cpu(v, vcpu < 0 ? 0 : vcpu, package, per_thread);
        thread.load = thread.is_vcpu ? 0.10 + 0.85 * unit() : 0.02;
        threads_.push_back(thread);
        block.threads.push_back(
            {thread.key, std::uint32_t(v), tid, std::move(name), role, vcpu,
             role == ThreadRole::iothread ? "io1" : "", 1000u + thread.key,
             thread.pinned ? std::to_string(thread.cpu) : fmt::format("0-{}", cpu_count() - 1)});
      };
      add(ThreadRole::emulator_main, -1, "qemu-system-x86", pid);
      add(ThreadRole::emulator_other, -1, "call_rcu", pid + 1);
      add(ThreadRole::iothread, -1, "IO io1", pid + 2);
      for (int c = 0; c < options_.vcpus; ++c) {
        add(ThreadRole::vcpu, c, fmt::format("CPU {}/KVM", c), pid + 10 + c);
      }
    }
    return block;
  }

  std::uint64_t interval_ns() const { return std::uint64_t(options_.interval_ms * 1e6); }
  std::uint64_t duration_ns() const { return std::uint64_t(options_.duration_s * 1e9); }

  // Every thread at `time` (ns), having run for `elapsed` ns since the last sample.
  SampleRecord sample(std::uint64_t time, std::uint64_t elapsed, bool move) {
    SampleRecord record{time, {}};
    for (SynthThread& t : threads_) {
      // A floating vCPU moves about once every 20 s on average.
      if (move && t.is_vcpu && !t.pinned && unit() < double(elapsed) / 20e9) migrate(t);
      const double jitter = 0.9 + 0.2 * unit();
      t.cpu_time += std::uint64_t(double(elapsed) * std::min(1.0, t.load * jitter));
      t.run_delay += std::uint64_t(double(elapsed) * 0.01 * unit());
      record.threads.push_back(
          {t.key, t.cpu, unit() < t.load ? 'R' : 'S', t.cpu_time, t.run_delay, t.migrations});
    }
    return record;
  }

  // Exact mode: the events of every vCPU up to `to`, in time order.
  std::vector<Event> events(std::uint64_t to) {
    std::vector<Event> out;
    while (!pending_.empty() && pending_.top().time_ns < to) {
      Pending next = pending_.top();
      pending_.pop();
      SynthThread& t = threads_[next.key];
      const double period = 1e9 / options_.switch_rate;
      if (next.running) {  // it leaves its CPU: preempted now and then, mostly halts
        const bool preempted = unit() < 0.2;
        out.push_back({EventKind::switch_out,
                       next.time_ns,
                       t.key,
                       t.cpu,
                       -1,
                       preempted ? 'R' : 'S',
                       0,
                       {},
                       false});
        const auto off = std::uint64_t(period * (1 - t.load) * (0.5 + unit()));
        pending_.push({next.time_ns + std::max<std::uint64_t>(off, 1000), t.key, false});
      } else {  // woken, sometimes elsewhere, then switched in
        if (!t.pinned && unit() < 1.0 / (20 * options_.switch_rate)) {
          const int from_cpu = t.cpu;
          migrate(t);
          out.push_back(
              {EventKind::migrate, next.time_ns, t.key, t.cpu, from_cpu, 'R', 0, {}, false});
        }
        out.push_back({EventKind::wakeup, next.time_ns, t.key, t.cpu, -1, 'R', 0, {}, false});
        const std::uint64_t in_at = next.time_ns + 2000 + std::uint64_t(20000 * unit());
        out.push_back({EventKind::switch_in, in_at, t.key, t.cpu, -1, 'R', 0, {}, false});
        const auto on = std::uint64_t(period * t.load * (0.5 + unit()));
        pending_.push({in_at + std::max<std::uint64_t>(on, 1000), t.key, true});
      }
    }
    std::sort(out.begin(), out.end(),
              [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
    return out;
  }

  // Exact mode: every vCPU starts running at time 0.
  void start_events() {
    for (const SynthThread& t : threads_) {
      if (t.is_vcpu) pending_.push({1000 + std::uint64_t(1e6 * unit()), t.key, true});
    }
  }

 private:
  struct Pending {
    std::uint64_t time_ns = 0;
    std::uint32_t key = 0;
    bool running = false;  // true: the next event is its switch-out
    bool operator>(const Pending& other) const { return time_ns > other.time_ns; }
  };

  double unit() { return std::uniform_real_distribution<double>(0, 1)(random_); }

  int home_cpu(int vm, int vcpu, int package, int per_thread) const {
    // VMs of a package take turns over its cores and threads: few share a CPU.
    const int slot = (vm / options_.packages) * options_.vcpus + vcpu;
    const int core = slot % options_.cores;
    const int thread = (slot / options_.cores) % options_.smt;
    return thread * per_thread + package * options_.cores + core;
  }

  // Where a woken vCPU lands when it moves: mostly back on its home CPU or next to it (wake
  // affinity, cache-hot), sometimes another core of its package, rarely the other package.
  void migrate(SynthThread& t) {
    const int per_thread = options_.packages * options_.cores;
    const double roll = unit();
    int next = t.cpu;
    if (roll < 0.5 && t.cpu != t.home) {
      next = t.home;
    } else if (roll < 0.75 && options_.smt > 1) {  // its SMT sibling
      next = (t.cpu + per_thread) % cpu_count();
    } else {
      int package = topology_.cpus[t.home].package;
      if (roll >= 0.95 && options_.packages > 1) package = (package + 1) % options_.packages;
      const int core = int(unit() * options_.cores) % options_.cores;
      const int thread = int(unit() * options_.smt) % options_.smt;
      next = thread * per_thread + package * options_.cores + core;
    }
    if (next == t.cpu) next = (t.cpu + 1) % per_thread + (t.cpu / per_thread) * per_thread;
    t.cpu = next;
    ++t.migrations;
  }

  const Options& options_;
  Topology topology_;
  std::mt19937_64 random_;
  std::vector<SynthThread> threads_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> pending_;
};

int fail(const Status& status) {
  fmt::print(stderr, "synth_recording: {}\n", status.error().message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  auto writer = RecordingWriter::create(options.output);
  if (!writer) {
    fmt::print(stderr, "synth_recording: {}\n", writer.error().message);
    return 1;
  }
  Synth synth(options);
  if (auto status = writer->write(synth.host()); !status) return fail(status);
  if (auto status = writer->write(synth.identity()); !status) return fail(status);
  if (options.exact) synth.start_events();

  // Blocks as the recorder flushes them: a second of samples (or of events) each.
  const std::uint64_t duration = synth.duration_ns();
  const std::uint64_t step = options.exact ? 1'000'000'000 : synth.interval_ns();
  std::uint64_t samples = 0, events = 0, last = 0;
  SampleBlock pending_samples;
  auto flush = [&]() -> Status {
    if (pending_samples.samples.empty()) return Ok{};
    Status status = writer->write(pending_samples);
    pending_samples.samples.clear();
    return status;
  };
  std::uint64_t flushed_at = 0;
  for (std::uint64_t time = 0; time <= duration; time += step) {
    if (options.exact && time > 0) {
      EventBlock block{synth.events(time)};
      if (!block.events.empty()) {
        if (auto status = flush(); !status) return fail(status);
        events += block.events.size();
        last = std::max(last, block.events.back().time_ns);
        if (auto status = writer->write(block); !status) return fail(status);
      }
    }
    pending_samples.samples.push_back(synth.sample(time, time == 0 ? 0 : step, !options.exact));
    ++samples;
    last = std::max(last, time);
    if (time - flushed_at >= 1'000'000'000) {
      if (auto status = flush(); !status) return fail(status);
      flushed_at = time;
    }
  }
  if (auto status = flush(); !status) return fail(status);
  if (auto status = writer->write(EndBlock{last, samples, events, 0, "duration reached"});
      !status) {
    return fail(status);
  }
  fmt::print("{}: {} CPUs, {} VMs x {} vCPUs, {} mode, {:.0f} s, {} samples, {} events, {} bytes\n",
             options.output, synth.cpu_count(), options.vms, options.vcpus,
             options.exact ? "exact" : "sampled", options.duration_s, samples, events,
             writer->size());
  return 0;
}
