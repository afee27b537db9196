// Changing where a VM's threads may run: validate first, then change all threads or none.
// libvirt domains go through libvirt (its cgroups and XML stay right); other VMs get
// sched_setaffinity on the threads of the role.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "sources/libvirt/libvirt.h"
#include "sources/procfs/affinity.h"
#include "util/cpuset.h"
#include "util/result.h"

namespace vcpumap::pin {

// Which threads of a VM a pin applies to.
enum class PinRole { vcpu, emulator, iothread };

// One vCPU, the emulator threads, or one I/O thread.
struct PinTarget {
  PinRole role = PinRole::vcpu;
  int vcpu = -1;         // for PinRole::vcpu
  std::string iothread;  // for PinRole::iothread: the ID iothreadinfo shows ("1", or "io1")

  // vCPU `vcpu` of the VM.
  static PinTarget of_vcpu(int vcpu);
  // Every emulator thread of the VM (virsh's emulatorpin).
  static PinTarget of_emulator();
  // The I/O thread with this ID.
  static PinTarget of_iothread(std::string id);
};

// A validated change, ready to apply.
struct PinPlan {
  PinTarget target;
  CpuSet cpus;            // the CPUs asked for, every one present and online
  bool reset = false;     // virsh's "r": back to every host CPU
  CpuSet libvirt_cpus;    // the map libvirt gets: `cpus`, or all host CPUs for "r" as virsh sends
  std::vector<int> tids;  // the threads of that role now (none for an inactive domain)
  int libvirt_iothread = -1;  // libvirt's I/O thread id, for a libvirt domain
};

// Checks that the VM has this vCPU or I/O thread (the emulator always exists); the error names
// the ones it has.
Status check_target(const Vm& vm, const PinTarget& target);

// Checks the CPU list (virsh's syntax, or "r") against the host and the target against the VM;
// an error (ExitCode::bad_input) is one line naming the bad part and what would work.
Result<PinPlan> plan_pin(const Vm& vm, const Topology& topology, PinTarget target,
                         std::string_view cpulist_text);

// The kernel calls apply_affinity makes: the real ones by default; a test passes its own to make
// one thread fail at a chosen moment.
struct AffinityCalls {
  std::function<procfs::AffinityReading(int tid)> read = procfs::read_affinity;
  std::function<int(int tid, const CpuSet& cpus)> write = procfs::write_affinity;
};

// Sets every thread's affinity to `cpus`, or none: on a failure part-way, the threads already
// changed get their old affinity back before the error is returned.
Status apply_affinity(const std::vector<int>& tids, const CpuSet& cpus,
                      const AffinityCalls& calls = {});

// How a change was made.
struct PinOutcome {
  bool through_libvirt = false;
  std::vector<int> tids;  // threads given new affinity by sched_setaffinity
};

// Checks that `scope` makes sense for this VM (--live needs a running domain, --config a libvirt
// one); nothing is changed.
Status check_scope(const Vm& vm, libvirt::Scope scope);

// Applies a plan: through `connection` for a libvirt domain (it must then be non-null), else by
// sched_setaffinity on the plan's threads. Checks the scope first.
Result<PinOutcome> apply_pin(const Vm& vm, const PinPlan& plan, libvirt::Scope scope,
                             const libvirt::Connection* connection);

// "vCPU 1", "the emulator threads", "I/O thread 2": for messages.
std::string describe(const PinTarget& target);

}  // namespace vcpumap::pin
