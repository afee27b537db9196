// Plain data every layer shares: the host's topology, VMs and their threads. No I/O here.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/cpuset.h"

namespace vcpumap {

// ---- host topology ----

struct Cpu {
  int cpu = -1;      // the kernel's CPU number
  int core = -1;     // core number as the kernel gives it (topology/core_id), -1 when unknown
  int package = -1;  // physical package id, -1 when unknown
  int node = -1;     // NUMA node, -1 when unknown
  bool online = true;
  bool isolated = false;
  CpuSet siblings;  // SMT siblings, this CPU included (empty when offline)
};

struct Cache {
  int level = 0;
  std::string type;              // "Data", "Instruction" or "Unified"
  std::uint64_t size_bytes = 0;  // size of one instance
  int instances = 0;
};

struct NumaNode {
  int node = -1;
  CpuSet cpus;
};

struct Topology {
  std::vector<Cpu> cpus;  // every present CPU (online or not), by number
  CpuSet possible;        // the kernel's `possible`: may include hot-plug slots that hold no CPU
  CpuSet present;  // CPUs that exist, online or not: lscpu's "CPU(s)" and libvirt's host CPU count
  CpuSet online;
  CpuSet isolated;
  int packages = 0;
  int cores = 0;  // physical cores, across all packages
  int threads_per_core = 0;
  std::vector<NumaNode> nodes;
  std::vector<Cache> caches;
  std::string hypervisor_vendor;  // empty when the host is not itself a VM
  std::string model_name;

  // The CPU with this number, or nullptr.
  const Cpu* find(int cpu) const;
  // Width of virsh's y/- affinity string: the number of host CPUs libvirt counts.
  int affinity_width() const;
};

// ---- VMs and their threads ----

enum class Hypervisor { qemu, firecracker, cloud_hypervisor, crosvm };

// How a thread serves its VM.
enum class ThreadRole {
  vcpu,              // runs one virtual CPU
  iothread,          // a user-defined QEMU I/O thread ("IO <id>")
  emulator_main,     // the process's main thread: QEMU's main loop
  emulator_monitor,  // QEMU's monitor I/O thread ("IO mon_iothread")
  emulator_other,    // call_rcu, workers, API threads...
  vhost              // a vhost-<pid> worker serving the VM's devices
};

std::string_view to_string(Hypervisor hypervisor);
std::string_view to_string(ThreadRole role);
// True for the roles virsh calls "emulator" threads.
bool is_emulator_role(ThreadRole role);

// What the kernel says about one thread at one moment. Optional fields are absent when the
// kernel file behind them is missing (never 0 in their place).
struct ThreadFacts {
  char state = '?';  // stat field 3
  // stat fields 14-15. Empty when the source did not read stat (bpf: the kernel scales these
  // ticks to the runtime only when stat is read); cpu_time_ns is the exact figure.
  std::optional<std::uint64_t> utime_ticks;
  std::optional<std::uint64_t> stime_ticks;
  std::uint64_t start_time_ticks = 0;         // stat field 22: tells a reused tid apart
  int last_cpu = -1;                          // stat field 39
  std::optional<std::uint64_t> cpu_time_ns;   // schedstat field 1
  std::optional<std::uint64_t> run_delay_ns;  // schedstat field 2
  std::optional<std::uint64_t> timeslices;    // schedstat field 3
  std::optional<std::uint64_t> migrations;    // sched: se.nr_migrations
  std::optional<std::uint64_t> voluntary_switches;
  std::optional<std::uint64_t> involuntary_switches;
  CpuSet affinity;

  // utime + stime in ticks, when stat was read.
  std::optional<std::uint64_t> cpu_ticks() const {
    if (!utime_ticks || !stime_ticks) return std::nullopt;
    return *utime_ticks + *stime_ticks;
  }
};

// A thread of a VM. Its identity everywhere (sampler, audit, recorder) is (VM pid, tid,
// facts.start_time_ticks): a tid is reused once its thread exits, the start time tells them apart.
struct VmThread {
  int tid = 0;
  std::string name;  // raw bytes of the kernel's comm, may hold anything
  ThreadRole role = ThreadRole::emulator_other;
  int vcpu = -1;         // for role vcpu
  std::string iothread;  // for role iothread: QEMU's object id
  ThreadFacts facts;
};

// Where the vCPU-to-thread mapping of a VM came from.
enum class VcpuSource { thread_names, libvirt_status, qmp, unknown };
std::string_view to_string(VcpuSource source);

// OpenStack nova's <nova:instance> metadata of a libvirt domain.
struct NovaInstance {
  std::string name;        // the instance's display name
  std::string flavor;      // flavor name
  std::string project;     // owner project name
  std::string cpu_policy;  // flavor extra spec hw:cpu_policy when nova wrote it (may be empty)
  // hw:emulator_threads_policy ("share" or "isolate"): nova keeps the emulator threads off the
  // dedicated vCPUs' CPUs. Empty when the flavor says nothing.
  std::string emulator_threads_policy;
};

// What libvirt knows about a domain, kept beside what /proc shows.
struct LibvirtDomain {
  int id = -1;  // libvirt's domain id, -1 when inactive
  std::string name;
  std::string uuid;
  std::string state;  // virsh's words: "running", "shut off", "paused"...
  bool active = false;
  int pid = 0;    // the QEMU process, when active and known
  int vcpus = 0;  // vCPUs in the definition that applies (live when active)
  // Configured pinning from the definition (virDomainGetVcpuPinInfo and friends): what virsh's
  // vcpupin and emulatorpin show.
  std::vector<CpuSet> vcpu_pins;
  CpuSet emulator_pin;
  // I/O threads in libvirt's order (virDomainGetIOThreadInfo): id and affinity.
  std::vector<std::pair<int, CpuSet>> iothreads;
  std::optional<NovaInstance> nova;
};

// What Proxmox VE's ROOT/etc/pve/qemu-server/VMID.conf says about a VM's CPUs: each field is
// absent when the file does not set it.
struct ProxmoxConfig {
  std::string name;
  std::optional<int> cores;
  std::optional<int> sockets;
  std::optional<int> vcpus;  // hot-plugged vCPUs online, when fewer than cores * sockets
  // PVE >= 7.3's `affinity`: the host CPUs of every thread of the process, emulator threads too.
  std::optional<CpuSet> affinity;
  std::string affinity_text;  // as the file writes it
  std::optional<bool> numa;
  std::optional<int> cpuunits;
  std::optional<double> cpulimit;  // host CPUs' worth of time, 0 for no limit

  bool operator==(const ProxmoxConfig&) const = default;

  // The vCPUs the VM starts with: vcpus, else cores * sockets (each defaults to 1).
  int vcpu_count() const;
};

// A Proxmox VE guest: QEMU started with -id VMID.
struct ProxmoxVm {
  int vmid = 0;
  std::optional<ProxmoxConfig> config;  // nullopt when the file could not be read
};

// A KubeVirt VM: QEMU in a virt-launcher pod, named NAMESPACE_NAME as virt-launcher's libvirt
// names domains.
struct KubevirtVm {
  std::string ns;       // the VM's namespace
  std::string name;     // the VirtualMachineInstance's name
  std::string pod_uid;  // the virt-launcher pod's UID, from the process's cgroup
  // The pod's libvirt status file, as a path inside the pod; empty when none could be read.
  std::string status_file;
  // Its configured pinning (<cputune>, what dedicatedCpuPlacement writes): each vCPU's that has
  // one (<vcpupin>, else <vcpu cpuset>), and the emulator threads' (<emulatorpin>, else cpuset).
  std::map<int, CpuSet> vcpu_pins;
  std::optional<CpuSet> emulator_pin;
};

struct Vm {
  int pid = 0;       // 0 for an inactive libvirt domain
  std::string name;  // may be empty when the hypervisor was given none
  std::string uuid;  // may be empty
  Hypervisor hypervisor = Hypervisor::qemu;
  VcpuSource vcpu_source = VcpuSource::unknown;
  std::vector<VmThread> threads;         // sorted: vCPUs by index, then I/O threads, then the rest
  std::optional<LibvirtDomain> libvirt;  // when libvirt manages this VM
  std::optional<ProxmoxVm> proxmox;      // when Proxmox VE runs it (-id VMID)
  std::optional<KubevirtVm> kubevirt;    // when it runs in a KubeVirt virt-launcher pod
  // libvirt runs this process (its status file says so) but did not answer: its pinning must go
  // through libvirt, which can't be done now.
  bool libvirt_unanswered = false;
  std::vector<std::string> notes;  // one-line remarks about this VM (e.g. debug-threads missing)

  // Threads of one role, in order.
  std::vector<const VmThread*> threads_with(ThreadRole role) const;
  std::vector<const VmThread*> vcpus() const { return threads_with(ThreadRole::vcpu); }
  // Emulator threads: every thread that is neither a vCPU, an I/O thread nor vhost.
  std::vector<const VmThread*> emulator_threads() const;
  // The union of the emulator threads' affinities.
  CpuSet emulator_affinity() const;
  // The name a person would use: name, else "pid N".
  std::string display_name() const;
};

// How libvirt answered the questions behind a snapshot.
struct LibvirtHealth {
  bool up = false;  // it answered (for the exporter: is connected and answering now)
  std::optional<std::chrono::system_clock::time_point> last_success;  // its last full answer
  std::uint64_t calls = 0;  // calls this process has made to libvirt so far
};

// One look at the host: its topology and every VM, with the times it was taken.
struct Snapshot {
  Topology topology;
  std::vector<Vm> vms;
  std::chrono::steady_clock::time_point monotonic;  // for rates
  std::chrono::system_clock::time_point wall;       // for people
  std::vector<std::string> notes;     // one-line remarks for the user (e.g. debug-threads missing)
  long clock_ticks_per_second = 100;  // USER_HZ, the unit of stat's utime and stime
  std::string source;                 // the engine that read the threads: "bpf" or "procfs"
  std::optional<LibvirtHealth> libvirt_health;  // absent when libvirt was not asked
};

}  // namespace vcpumap
