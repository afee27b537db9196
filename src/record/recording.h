// What a recording holds, decoded: the host, the identity of every VM and thread, samples of
// each thread (sampled mode) and scheduler events (exact mode). Plain data, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/model.h"

namespace vcpumap::record {

enum class Mode : std::uint8_t { sampled = 0, exact = 1 };
std::string_view to_string(Mode mode);

// The first block: where and how the recording was made, so it can be read on another machine.
struct HostBlock {
  std::string tool_version;
  std::string hostname;
  std::string kernel;
  Mode mode = Mode::sampled;
  std::uint64_t interval_ns = 0;       // sampling interval
  std::int64_t start_wall_ns = 0;      // Unix time of time 0
  Topology topology;                   // cpus (cpu, core, package, node, online), counts, vendor
  std::vector<std::string> vm_filter;  // the VMs the user named (empty: all)
  // The thread-facts engine that read the samples ("bpf", "procfs"); empty in files written
  // before it was recorded (the field was added at the end of the block, so they still read).
  std::string source;
};

// One thread as first seen. `key` numbers threads across the file: a tid can be reused, a key
// is not.
struct ThreadIdentity {
  std::uint32_t key = 0;
  std::uint32_t vm_key = 0;
  int tid = 0;
  std::string name;
  ThreadRole role = ThreadRole::emulator_other;
  int vcpu = -1;
  std::string iothread;
  std::uint64_t start_time_ticks = 0;
  std::string affinity;  // kernel CPU list when first seen
};

struct VmIdentity {
  std::uint32_t key = 0;
  int pid = 0;
  std::string name;
  std::string uuid;
  Hypervisor hypervisor = Hypervisor::qemu;
};

// VMs and threads new since the previous identity block (times are ns since time 0).
struct IdentityBlock {
  std::uint64_t time_ns = 0;
  std::vector<VmIdentity> vms;
  std::vector<ThreadIdentity> threads;
};

// One thread at one sample. Optional figures are absent when the kernel did not give them.
struct ThreadSample {
  std::uint32_t key = 0;
  int cpu = -1;
  char state = '?';
  std::optional<std::uint64_t> cpu_time_ns;
  std::optional<std::uint64_t> run_delay_ns;
  std::optional<std::uint64_t> migrations;  // se.nr_migrations
};

struct SampleRecord {
  std::uint64_t time_ns = 0;
  std::vector<ThreadSample> threads;
};

struct SampleBlock {
  std::vector<SampleRecord> samples;
};

enum class EventKind : std::uint8_t {
  switch_in = 0,
  switch_out = 1,
  migrate = 2,
  wakeup = 3,
  lost = 4,
  // Version 2: a switch between two tasks that are not recorded, on a CPU where a recorded
  // thread may wait (the culprits of its delay).
  cpu_switch = 5
};

// The other side of a switch, as the kernel had it then: what a vCPU waited behind. Version 2
// only; tid 0 with an empty comm is the idle task, tgid and cgroup 0 are "not known" (the perf
// engine has neither).
struct Peer {
  int tid = 0;
  int tgid = 0;
  std::string comm;
  std::uint64_t cgroup = 0;    // the cgroup v2 id (the inode number of its directory)
  bool kernel_thread = false;  // PF_KTHREAD
  bool operator==(const Peer&) const = default;
};

// One scheduler event of a recorded thread (exact mode).
struct Event {
  EventKind kind = EventKind::switch_in;
  std::uint64_t time_ns = 0;
  std::uint32_t key = 0;   // the thread (unused for lost and cpu_switch)
  int cpu = -1;            // where it happened; for migrate the destination, for wakeup the target
  int orig_cpu = -1;       // migrate: the CPU it left
  char state = 'R';        // switch_out: the state it left in ('R': preempted, still runnable)
  std::uint64_t lost = 0;  // lost: how many events the kernel dropped on `cpu`
  // switch_out and cpu_switch: the task that runs on `cpu` from now; switch_in: the one that ran
  // before. Empty in version-1 files (has_peer false).
  Peer peer;
  bool has_peer = false;
};

struct EventBlock {
  std::vector<Event> events;
};

// The last block of a cleanly closed file.
struct EndBlock {
  std::uint64_t time_ns = 0;
  std::uint64_t samples = 0;
  std::uint64_t events = 0;
  std::uint64_t lost_events = 0;
  std::string reason;  // "duration reached", "interrupted", "write error: ..."
};

// Any block of a recording, decoded.
using Block = std::variant<HostBlock, IdentityBlock, SampleBlock, EventBlock, EndBlock>;

}  // namespace vcpumap::record
