// What every audit rule needs, worked out once: each thread's enforced CPUs, which vCPUs are
// pinned, which host CPUs are held by a vCPU pinned to them alone, and how to word threads and
// fix commands. Internal to src/audit.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit.h"

namespace vcpumap::audit {

// One thread of a running VM, with what the audit worked out about it.
struct AuditedThread {
  const Vm* vm = nullptr;
  const VmThread* thread = nullptr;
  const ThreadObservation* observed = nullptr;  // nullptr when the gatherer missed it
  CpuSet enforced;          // affinity ∩ cgroup cpuset: where the kernel lets it run
  bool pinned = false;      // enforced leaves out some online CPU
  bool one_to_one = false;  // enforced is exactly one CPU
};

class AuditContext {
 public:
  explicit AuditContext(const AuditInput& input);

  const AuditInput& input() const { return input_; }
  const Topology& topology() const { return input_.snapshot.topology; }
  const CpuSet& online() const { return online_; }
  const std::vector<AuditedThread>& threads() const { return threads_; }

  // True when `cpus` leaves out some online CPU (libvirt reports an unpinned vCPU as every CPU).
  bool is_pinned(const CpuSet& cpus) const;
  // The audited threads of one VM with this role, in the VM's order.
  std::vector<const AuditedThread*> threads_of(const Vm& vm, ThreadRole role) const;
  // The non-vCPU threads of one VM: emulator, I/O and vhost threads.
  std::vector<const AuditedThread*> helper_threads_of(const Vm& vm) const;
  // vCPUs pinned to exactly this CPU, of any VM.
  const std::vector<const AuditedThread*>& holders(int cpu) const;
  // CPUs held by a vCPU pinned 1:1, of VMs other than `vm` (nullptr: of every VM).
  CpuSet held_cpus(const Vm* except) const;
  // CPUs held by a vCPU of `vm` pinned 1:1 and by no other VM's: where its other threads may go
  // when no CPU is free, taking time from its own guest only.
  CpuSet own_held_cpus(const Vm& vm) const { return held_cpus(nullptr) - held_cpus(&vm); }
  // Online CPUs that no pinned thread (vCPU, emulator, I/O) other than `except` may use: where
  // a vCPU can be moved to without landing on someone else's CPU.
  CpuSet free_cpus(const AuditedThread* except = nullptr) const;
  // The configured pinning of a vCPU from libvirt's live definition; nullopt without libvirt.
  std::optional<CpuSet> configured_vcpu(const Vm& vm, int vcpu) const;
  // Memory per NUMA node of a VM, nullptr when unknown.
  const procfs::NodeMemory* memory_of(const Vm& vm) const;

 private:
  const AuditInput& input_;
  CpuSet online_;
  std::vector<AuditedThread> threads_;
  std::map<int, std::vector<const AuditedThread*>> holders_;
  std::vector<const AuditedThread*> none_;
};

// ---- wording ----

// "vCPU 0 (tid 123)", "I/O thread iothread1 (tid 130)", "emulator thread (tid 120)".
std::string describe(const AuditedThread& thread);
// describe() with the VM's name: "vCPU 0 of web (tid 123)".
std::string describe_with_vm(const AuditedThread& thread);
// "CPU 3" or "CPUs 0-3".
std::string cpus_phrase(const CpuSet& cpus);
// A VM as a command argument: its name (shell-quoted when needed), else its PID.
std::string vm_argument(const Vm& vm);
// " --live --config" for a libvirt domain (the fix should outlive a restart), else "".
std::string persist_flags(const Vm& vm);
// `vcpumap vcpupin VM N CPUS …` for one vCPU, or a shell loop for several given the same CPUs.
std::string vcpupin_fix(const Vm& vm, const std::vector<int>& vcpus, const CpuSet& cpus);
// `vcpumap emulatorpin VM CPUS` with `flags` (" --live", persist_flags()).
std::string emulatorpin_fix(const Vm& vm, const CpuSet& cpus, std::string_view flags);
// `vcpumap iothreadpin VM ID CPUS` with `flags`; `id` is libvirt's number or QEMU's object id.
std::string iothreadpin_fix(const Vm& vm, std::string_view id, const CpuSet& cpus,
                            std::string_view flags);
// The command that pins threads of one VM and one group (its vCPUs, its emulator threads, one I/O
// thread, vhost workers) to `cpus`; "" when `cpus` or `threads` is empty.
std::string pin_group_fix(const Vm& vm, const std::vector<const AuditedThread*>& threads,
                          const CpuSet& cpus);
// One CPU of `candidates`: the thread's last CPU when it is one (moving it least), else the
// first; empty when `candidates` is.
CpuSet one_cpu(const CpuSet& candidates, const AuditedThread& thread);
// " (seen running on CPU N during the audit)" when a thread ran on one of `cpus`, else "".
std::string seen_on(const std::vector<const AuditedThread*>& threads, const CpuSet& cpus);

// The FindingThread of an audited thread.
FindingThread finding_thread(const AuditedThread& thread);
// Starts a finding with its rule, severity, VMs (the one to fix first), threads and CPUs.
Finding make_finding(std::string rule, Severity severity, const std::vector<const Vm*>& vms,
                     const std::vector<const AuditedThread*>& threads, const CpuSet& cpus);

// ---- the rules, one function each ----

void check_pin_drift(const AuditContext& context, std::vector<Finding>& findings);
void check_offline_or_housekeeping(const AuditContext& context, std::vector<Finding>& findings);
void check_numa_split(const AuditContext& context, std::vector<Finding>& findings);
void check_shared_pcpu(const AuditContext& context, std::vector<Finding>& findings);
void check_smt_sibling_shared(const AuditContext& context, std::vector<Finding>& findings);
void check_emulator_on_vcpu_cpu(const AuditContext& context, std::vector<Finding>& findings);
void check_floating_vcpu(const AuditContext& context, std::vector<Finding>& findings);

}  // namespace vcpumap::audit
