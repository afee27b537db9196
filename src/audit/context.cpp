#include "audit/context.h"

#include <algorithm>

#include <fmt/format.h>

namespace vcpumap::audit {

AuditContext::AuditContext(const AuditInput& input) : input_(input) {
  const auto& topology = input.snapshot.topology;
  online_ = !topology.online.empty() ? topology.online : topology.present;
  for (const auto& vm : input.snapshot.vms) {
    if (vm.pid <= 0) continue;  // an inactive domain has no threads to audit
    for (const auto& thread : vm.threads) {
      AuditedThread audited;
      audited.vm = &vm;
      audited.thread = &thread;
      const auto found = input.facts.threads.find(thread.tid);
      if (found != input.facts.threads.end()) audited.observed = &found->second;
      audited.enforced = thread.facts.affinity;
      // The kernel keeps affinity within the cpuset already (cgroup v1 rewrites it); the
      // intersection still matters where a kernel keeps the user's wider mask (v2, 6.2+).
      if (audited.observed != nullptr && audited.observed->cgroup) {
        const auto both = audited.enforced & audited.observed->cgroup->cpus;
        if (!both.empty()) audited.enforced = both;
      }
      audited.pinned = is_pinned(audited.enforced);
      audited.one_to_one = audited.enforced.count() == 1;
      threads_.push_back(std::move(audited));
    }
  }
  for (const auto& audited : threads_) {
    if (audited.thread->role == ThreadRole::vcpu && audited.one_to_one) {
      holders_[audited.enforced.cpus().front()].push_back(&audited);
    }
  }
}

bool AuditContext::is_pinned(const CpuSet& cpus) const {
  return !cpus.empty() && !online_.is_subset_of(cpus);
}

std::vector<const AuditedThread*> AuditContext::threads_of(const Vm& vm, ThreadRole role) const {
  std::vector<const AuditedThread*> result;
  for (const auto& audited : threads_) {
    if (audited.vm == &vm && audited.thread->role == role) result.push_back(&audited);
  }
  return result;
}

std::vector<const AuditedThread*> AuditContext::helper_threads_of(const Vm& vm) const {
  std::vector<const AuditedThread*> result;
  for (const auto& audited : threads_) {
    if (audited.vm == &vm && audited.thread->role != ThreadRole::vcpu) result.push_back(&audited);
  }
  return result;
}

const std::vector<const AuditedThread*>& AuditContext::holders(int cpu) const {
  const auto found = holders_.find(cpu);
  return found == holders_.end() ? none_ : found->second;
}

CpuSet AuditContext::held_cpus(const Vm* except) const {
  CpuSet held;
  for (const auto& [cpu, vcpus] : holders_) {
    for (const auto* vcpu : vcpus) {
      if (vcpu->vm != except) held.add(cpu);
    }
  }
  return held;
}

CpuSet AuditContext::free_cpus(const AuditedThread* except) const {
  CpuSet taken;
  for (const auto& audited : threads_) {
    if (&audited != except && audited.pinned) taken = taken | audited.enforced;
  }
  return online_ - taken;
}

std::optional<CpuSet> AuditContext::configured_vcpu(const Vm& vm, int vcpu) const {
  if (vcpu < 0) return std::nullopt;
  if (vm.kubevirt) {
    // The pod's libvirt pins it (KubeVirt's dedicatedCpuPlacement), not the host's.
    const auto found = vm.kubevirt->vcpu_pins.find(vcpu);
    if (found != vm.kubevirt->vcpu_pins.end()) return found->second;
  }
  if (!vm.libvirt) return std::nullopt;
  const auto& pins = vm.libvirt->vcpu_pins;
  if (static_cast<std::size_t>(vcpu) >= pins.size()) return std::nullopt;
  return pins[static_cast<std::size_t>(vcpu)];
}

const procfs::NodeMemory* AuditContext::memory_of(const Vm& vm) const {
  const auto found = input_.facts.vm_memory.find(vm.pid);
  return found == input_.facts.vm_memory.end() ? nullptr : &found->second;
}

std::string describe(const AuditedThread& audited) {
  const auto& thread = *audited.thread;
  switch (thread.role) {
    case ThreadRole::vcpu:
      return fmt::format("vCPU {} (tid {})", thread.vcpu, thread.tid);
    case ThreadRole::iothread:
      return fmt::format("I/O thread {} (tid {})", thread.iothread, thread.tid);
    case ThreadRole::vhost:
      return fmt::format("vhost worker (tid {})", thread.tid);
    default:
      return fmt::format("emulator thread (tid {})", thread.tid);
  }
}

std::string describe_with_vm(const AuditedThread& audited) {
  const auto& thread = *audited.thread;
  const auto vm = audited.vm->display_name();
  if (thread.role == ThreadRole::vcpu) {
    return fmt::format("vCPU {} of {} (tid {})", thread.vcpu, vm, thread.tid);
  }
  return fmt::format("{} of {}", describe(audited), vm);
}

std::string cpus_phrase(const CpuSet& cpus) {
  return fmt::format("{} {}", cpus.count() == 1 ? "CPU" : "CPUs", cpus.to_list());
}

std::string vm_argument(const Vm& vm) {
  if (vm.name.empty()) return std::to_string(vm.pid);
  const bool plain = std::all_of(vm.name.begin(), vm.name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (plain) return vm.name;
  std::string quoted = "'";
  for (char c : vm.name) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string persist_flags(const Vm& vm) {
  return vm.libvirt ? " --live --config" : "";
}

std::string vcpupin_fix(const Vm& vm, const std::vector<int>& vcpus, const CpuSet& cpus) {
  if (vcpus.empty() || cpus.empty()) return {};
  if (vcpus.size() == 1) {
    return fmt::format("vcpumap vcpupin {} {} {}{}", vm_argument(vm), vcpus.front(), cpus.to_list(),
                       persist_flags(vm));
  }
  return fmt::format("for v in {}; do vcpumap vcpupin {} $v {}{}; done", fmt::join(vcpus, " "),
                     vm_argument(vm), cpus.to_list(), persist_flags(vm));
}

std::string emulatorpin_fix(const Vm& vm, const CpuSet& cpus, std::string_view flags) {
  return fmt::format("vcpumap emulatorpin {} {}{}", vm_argument(vm), cpus.to_list(), flags);
}

std::string iothreadpin_fix(const Vm& vm, std::string_view id, const CpuSet& cpus,
                            std::string_view flags) {
  return fmt::format("vcpumap iothreadpin {} {} {}{}", vm_argument(vm), id, cpus.to_list(), flags);
}

std::string pin_group_fix(const Vm& vm, const std::vector<const AuditedThread*>& threads,
                          const CpuSet& cpus) {
  if (threads.empty() || cpus.empty()) return {};
  const auto& first = *threads.front()->thread;
  if (first.role == ThreadRole::vcpu) {
    std::vector<int> indices;
    for (const auto* audited : threads) indices.push_back(audited->thread->vcpu);
    return vcpupin_fix(vm, indices, cpus);
  }
  if (first.role == ThreadRole::iothread) {
    // libvirt's I/O thread N is the QEMU object "iothreadN"; iothreadpin takes N.
    std::string_view id = first.iothread;
    if (vm.libvirt && id.starts_with("iothread") && id.size() > 8) id.remove_prefix(8);
    return iothreadpin_fix(vm, id, cpus, persist_flags(vm));
  }
  if (first.role == ThreadRole::vhost) {
    // vhost workers are the kernel's threads: no hypervisor command pins them.
    std::vector<std::string> commands;
    for (const auto* audited : threads) {
      commands.push_back(fmt::format("taskset -pc {} {}", cpus.to_list(), audited->thread->tid));
    }
    return fmt::format("{}", fmt::join(commands, " && "));
  }
  return emulatorpin_fix(vm, cpus, persist_flags(vm));
}

CpuSet one_cpu(const CpuSet& candidates, const AuditedThread& thread) {
  CpuSet one;
  if (candidates.empty()) return one;
  const int last = thread.thread->facts.last_cpu;
  one.add(last >= 0 && candidates.contains(last) ? last : candidates.cpus().front());
  return one;
}

std::string seen_on(const std::vector<const AuditedThread*>& threads, const CpuSet& cpus) {
  CpuSet seen;
  for (const auto* audited : threads) {
    if (audited->observed != nullptr) seen = seen | (audited->observed->cpus_ran & cpus);
  }
  if (seen.empty()) return {};
  return fmt::format(" (seen running on {} during the audit)", cpus_phrase(seen));
}

FindingThread finding_thread(const AuditedThread& audited) {
  return FindingThread{audited.vm->display_name(), audited.thread->tid, audited.thread->role,
                       audited.thread->vcpu, audited.thread->iothread};
}

Finding make_finding(std::string rule, Severity severity, const std::vector<const Vm*>& vms,
                     const std::vector<const AuditedThread*>& threads, const CpuSet& cpus) {
  Finding finding;
  finding.rule = std::move(rule);
  finding.severity = severity;
  for (const auto* vm : vms) {
    if (std::find(finding.vm_pids.begin(), finding.vm_pids.end(), vm->pid) !=
        finding.vm_pids.end()) {
      continue;
    }
    finding.vms.push_back(vm->display_name());
    finding.vm_pids.push_back(vm->pid);
  }
  if (!finding.vms.empty()) finding.vm = finding.vms.front();
  for (const auto* audited : threads) finding.threads.push_back(finding_thread(*audited));
  finding.cpus = cpus;
  return finding;
}

}  // namespace vcpumap::audit
