// Rules that compare one VM's configuration with what the kernel enforces and with the host:
// pin-drift, offline-or-housekeeping-cpu, numa-split.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "audit/context.h"

namespace vcpumap::audit {
namespace {

std::vector<const Vm*> running_vms(const AuditContext& context) {
  std::vector<const Vm*> vms;
  for (const auto& vm : context.input().snapshot.vms) {
    if (vm.pid > 0) vms.push_back(&vm);
  }
  return vms;
}

// How the kernel's view of a thread differs from `want`: names the layer that differs.
std::string enforced_phrase(const AuditedThread& audited) {
  const auto& affinity = audited.thread->facts.affinity;
  // Name the cgroup only when it is what narrows the thread.
  if (audited.observed != nullptr && audited.observed->cgroup &&
      !affinity.is_subset_of(audited.observed->cgroup->cpus)) {
    return fmt::format("may run on {} (affinity {}, cgroup cpuset {})",
                       cpus_phrase(audited.enforced), affinity.to_list(),
                       audited.observed->cgroup->cpus.to_list());
  }
  return fmt::format("may run on {}", cpus_phrase(audited.enforced));
}

// Threads (of one kind) whose enforced CPUs differ from the configured ones, as one finding.
// `configured_by` says who configured it ("libvirt configures"). With `bound`, `configured` is an
// outer bound (Proxmox's affinity: finer pinning within it is fine): a thread drifts when it may
// run, or was seen running during the audit, outside it.
void drift_group(const AuditContext& context, const Vm& vm,
                 const std::vector<const AuditedThread*>& threads, const CpuSet& configured,
                 const std::string& what, const std::string& fix, std::vector<Finding>& findings,
                 const std::string& configured_by = "libvirt configures", bool bound = false) {
  const auto want = configured & context.online();
  if (want.empty()) return;  // pinned only to offline CPUs: offline-or-housekeeping-cpu says so
  std::vector<const AuditedThread*> drifted;
  CpuSet cpus;
  CpuSet ran;  // CPUs outside `want` that drifted threads were seen running on
  for (const auto* audited : threads) {
    const auto outside =
        bound && audited->observed != nullptr ? audited->observed->cpus_ran - want : CpuSet();
    const bool enforced_ok =
        bound ? audited->enforced.is_subset_of(want) : audited->enforced == want;
    if (enforced_ok && outside.empty()) continue;
    drifted.push_back(audited);
    cpus = cpus | audited->enforced | outside;
    ran = ran | outside;
  }
  if (drifted.empty()) return;
  // Unpinned in the definition but restricted now is a smaller surprise than a broken pin.
  const auto severity = context.is_pinned(want) ? Severity::error : Severity::warning;
  auto finding = make_finding("pin-drift", severity, {&vm}, drifted, cpus | want);
  std::string subject = describe(*drifted.front());
  if (drifted.size() > 1) {
    std::vector<int> tids;
    for (const auto* audited : drifted) tids.push_back(audited->thread->tid);
    std::sort(tids.begin(), tids.end());
    subject = fmt::format("{} threads (tids {})", what, fmt::join(tids, ", "));
  }
  const auto& first = *drifted.front();
  const auto where = (bound ? first.enforced.is_subset_of(want) : first.enforced == want)
                         ? fmt::format("was seen running on {}", cpus_phrase(ran))
                         : enforced_phrase(first);
  finding.message = fmt::format(
      "{} {} but {} {}, so it runs where nobody placed it and a restart will silently move it "
      "back",
      subject, where, configured_by, cpus_phrase(want));
  finding.fix = fix;
  findings.push_back(std::move(finding));
}

// Who configured a VM's pinning, for the findings' messages.
std::string configured_by(const Vm& vm) {
  return vm.kubevirt && !vm.libvirt ? "the pod's libvirt status file configures"
                                    : "libvirt configures";
}

void drift_vcpus(const AuditContext& context, const Vm& vm, std::vector<Finding>& findings) {
  const bool dedicated =
      vm.libvirt && vm.libvirt->nova && vm.libvirt->nova->cpu_policy == "dedicated";
  for (const auto* vcpu : context.threads_of(vm, ThreadRole::vcpu)) {
    const int index = vcpu->thread->vcpu;
    if (const auto configured = context.configured_vcpu(vm, index)) {
      drift_group(context, vm, {vcpu}, *configured, "vCPU",
                  vcpupin_fix(vm, {index}, *configured & context.online()), findings,
                  configured_by(vm));
    }
    if (dedicated && !vcpu->one_to_one) {
      // nova's dedicated policy gives each vCPU a host CPU of its own.
      auto target = vcpu->enforced & context.free_cpus(vcpu);
      if (target.empty()) target = context.free_cpus(vcpu);
      std::string shared;
      if (target.empty()) {
        // No CPU is free: one no other vCPU holds alone, of its own set first, still ends its
        // roaming over several CPUs.
        const auto unheld = context.online() - context.held_cpus(nullptr);
        target = (vcpu->enforced & unheld).empty() ? unheld : vcpu->enforced & unheld;
        shared = target.empty() ? "; no fix can be given: every host CPU is held by another vCPU "
                                  "pinned to it alone"
                                : "; no host CPU is free of other pinned threads, so the fix "
                                  "gives it one it shares with them until one is freed";
      }
      const auto one = one_cpu(target, *vcpu);
      auto finding = make_finding("pin-drift", Severity::error, {&vm}, {vcpu}, vcpu->enforced);
      finding.message = fmt::format(
          "nova's hw:cpu_policy=dedicated promises {} a host CPU of its own, but it may run on {}, "
          "so the guest gets shared CPUs it was sold as dedicated{}",
          describe(*vcpu), cpus_phrase(vcpu->enforced), shared);
      finding.fix = vcpupin_fix(vm, {index}, one);
      findings.push_back(std::move(finding));
    }
  }
}

void drift_helpers(const AuditContext& context, const Vm& vm, std::vector<Finding>& findings) {
  std::vector<const AuditedThread*> emulator;
  for (const auto* audited : context.helper_threads_of(vm)) {
    if (is_emulator_role(audited->thread->role)) emulator.push_back(audited);
  }
  if (vm.kubevirt && vm.kubevirt->emulator_pin && !vm.libvirt) {
    // No --live: the pod's libvirt is not the one vcpumap talks to; the threads are moved.
    const auto& pin = *vm.kubevirt->emulator_pin;
    drift_group(context, vm, emulator, pin, "emulator",
                fmt::format("vcpumap emulatorpin {} {}", vm_argument(vm),
                            (pin & context.online()).to_list()),
                findings, configured_by(vm));
  }
  if (!vm.libvirt) return;
  const auto& domain = *vm.libvirt;
  if (!domain.emulator_pin.empty()) {
    drift_group(context, vm, emulator, domain.emulator_pin, "emulator",
                emulatorpin_fix(vm, domain.emulator_pin & context.online(), " --live"), findings);
  }
  for (const auto& [id, cpus] : domain.iothreads) {
    std::vector<const AuditedThread*> matching;
    for (const auto* audited : context.threads_of(vm, ThreadRole::iothread)) {
      // libvirt names its I/O thread objects "iothread<ID>".
      if (audited->thread->iothread == fmt::format("iothread{}", id)) matching.push_back(audited);
    }
    drift_group(context, vm, matching, cpus, "I/O",
                iothreadpin_fix(vm, std::to_string(id), cpus & context.online(), " --live"),
                findings);
  }
}

// Proxmox's own way of applying `affinity:` to a running VM, as qemu-server does at its start.
std::string proxmox_affinity_fix(const AuditContext& context, const Vm& vm) {
  return fmt::format("taskset --cpu-list --all-tasks --pid {} {}",
                     (*vm.proxmox->config->affinity & context.online()).to_list(), vm.pid);
}

// Proxmox VE's `affinity:` (PVE >= 7.3) is applied with `taskset --all-tasks` when the VM starts:
// every thread of the process, vCPUs and emulator threads alike, should stay within it.
void drift_proxmox(const AuditContext& context, const Vm& vm, std::vector<Finding>& findings) {
  if (!vm.proxmox || !vm.proxmox->config || !vm.proxmox->config->affinity) return;
  const auto& affinity = *vm.proxmox->config->affinity;
  std::vector<const AuditedThread*> threads;
  for (const auto& audited : context.threads()) {
    // vhost workers are the kernel's, outside the process before Linux 6.4: taskset misses them.
    if (audited.vm == &vm && audited.thread->role != ThreadRole::vhost) {
      threads.push_back(&audited);
    }
  }
  drift_group(context, vm, threads, affinity, "VM", proxmox_affinity_fix(context, vm), findings,
              fmt::format("Proxmox's affinity in {}.conf gives the VM", vm.proxmox->vmid), true);
}

// The pinning to re-apply to a thread seen outside its affinity, and what it is: the configured
// one (libvirt's pins, Proxmox's affinity), else the affinity it has now, the last one set (for
// one thread: other emulator threads were not seen moving).
std::pair<std::string, std::string> restore_fix(const AuditContext& context,
                                                const AuditedThread& audited) {
  const auto& vm = *audited.vm;
  const auto& thread = *audited.thread;
  if (const auto configured = context.configured_vcpu(vm, thread.vcpu);
      thread.role == ThreadRole::vcpu && configured && context.is_pinned(*configured)) {
    const auto cpus = *configured & context.online();
    return {vcpupin_fix(vm, {thread.vcpu}, cpus),
            fmt::format("libvirt's configured pinning, {}", cpus_phrase(cpus))};
  }
  if (vm.libvirt && is_emulator_role(thread.role) && context.is_pinned(vm.libvirt->emulator_pin)) {
    const auto cpus = vm.libvirt->emulator_pin & context.online();
    return {emulatorpin_fix(vm, cpus, " --live"),
            fmt::format("libvirt's configured emulatorpin, {}", cpus_phrase(cpus))};
  }
  if (vm.libvirt && thread.role == ThreadRole::iothread) {
    for (const auto& [id, cpus] : vm.libvirt->iothreads) {
      if (thread.iothread == fmt::format("iothread{}", id) && context.is_pinned(cpus)) {
        return {iothreadpin_fix(vm, std::to_string(id), cpus & context.online(), " --live"),
                fmt::format("libvirt's configured iothreadpin, {}", cpus_phrase(cpus))};
      }
    }
  }
  if (vm.proxmox && vm.proxmox->config && vm.proxmox->config->affinity &&
      thread.role != ThreadRole::vhost) {
    return {proxmox_affinity_fix(context, vm),
            fmt::format("Proxmox's affinity in {}.conf to every thread of the VM, as Proxmox does",
                        vm.proxmox->vmid)};
  }
  const auto cpus = thread.facts.affinity & context.online();
  if (cpus.empty()) return {};
  auto fix = thread.role == ThreadRole::vcpu
                 ? vcpupin_fix(vm, {thread.vcpu}, cpus)
                 : fmt::format("taskset -pc {} {}", cpus.to_list(), thread.tid);
  return {std::move(fix),
          fmt::format("the affinity it has now ({}), the last one set", cpus.to_list())};
}

}  // namespace

void check_pin_drift(const AuditContext& context, std::vector<Finding>& findings) {
  for (const auto* vm : running_vms(context)) {
    drift_vcpus(context, *vm, findings);
    drift_helpers(context, *vm, findings);
    drift_proxmox(context, *vm, findings);
  }
  // The actual layer: a CPU a thread ran on that its affinity of that moment excluded. The
  // kernel never does that by itself: the affinity was changed while the audit watched.
  for (const auto& audited : context.threads()) {
    if (audited.observed == nullptr || audited.observed->ran_outside.empty()) continue;
    auto finding = make_finding("pin-drift", Severity::error, {audited.vm}, {&audited},
                                audited.observed->ran_outside);
    const auto [fix, pinning] = restore_fix(context, audited);
    finding.message = fmt::format(
        "{} was seen running on {} outside its affinity {}, so its pinning changed during the "
        "audit (a re-pin, or a change of its cgroup's cpuset) and whatever changed it may do so "
        "again; {}",
        describe(audited), cpus_phrase(audited.observed->ran_outside),
        audited.thread->facts.affinity.to_list(),
        fix.empty()
            ? "no fix can be given: its affinity could not be read"
            : fmt::format("the fix re-applies {}; if this returns, find what re-pins it", pinning));
    finding.fix = fix;
    findings.push_back(std::move(finding));
  }
}

void check_offline_or_housekeeping(const AuditContext& context, std::vector<Finding>& findings) {
  const auto& topology = context.topology();
  const auto offline = topology.present - context.online();
  const auto& isolated = topology.isolated;
  for (const auto* vm : running_vms(context)) {
    for (const auto* vcpu : context.threads_of(*vm, ThreadRole::vcpu)) {
      const int index = vcpu->thread->vcpu;
      // What the vCPU is pinned to: the definition and the thread's own mask (status's
      // Cpus_allowed keeps CPUs that went offline; the kernel then falls back to others).
      CpuSet pinned_to;
      if (const auto configured = context.configured_vcpu(*vm, index);
          configured && !(topology.present.is_subset_of(*configured))) {
        pinned_to = *configured;
      }
      if (!(context.online().is_subset_of(vcpu->thread->facts.affinity))) {
        pinned_to = pinned_to | vcpu->thread->facts.affinity;
      }
      if (pinned_to.empty()) continue;
      const auto dead = pinned_to & offline;
      if (!dead.empty()) {
        const auto alive = pinned_to & context.online();
        auto target = alive;
        std::string shared;
        if (target.empty()) {
          // Another online CPU: a free one, else one no vCPU holds alone, else any (sharing a
          // CPU beats a pin the kernel ignores).
          const auto unheld = context.online() - context.held_cpus(nullptr);
          for (const auto& candidates : {context.free_cpus(vcpu), unheld, context.online()}) {
            if (!candidates.empty()) {
              target = one_cpu(candidates, *vcpu);
              break;
            }
          }
          if (!target.empty() && (target & context.free_cpus(vcpu)).empty()) {
            shared = fmt::format(
                "; no online CPU is free of other pinned threads, so the fix gives it {}, which "
                "it shares with them until one is freed",
                cpus_phrase(target));
          }
        }
        auto finding =
            make_finding("offline-or-housekeeping-cpu", Severity::error, {vm}, {vcpu}, dead);
        finding.message =
            alive.empty()
                ? fmt::format(
                      "{} is pinned to offline {}, so the kernel ignores the pin and runs "
                      "it on whatever CPU it picks",
                      describe(*vcpu), cpus_phrase(dead))
                : fmt::format(
                      "{} is pinned to offline {} as well as {}, so it has fewer CPUs "
                      "than configured and gains one back if the CPU returns",
                      describe(*vcpu), cpus_phrase(dead), alive.to_list());
        finding.message += shared;
        finding.fix = vcpupin_fix(*vm, {index}, target);
        findings.push_back(std::move(finding));
        continue;
      }
      if (isolated.empty() || !vcpu->pinned) continue;
      const auto housekeeping = vcpu->enforced - isolated;
      if (housekeeping.empty()) continue;
      auto target = isolated & context.free_cpus(vcpu);
      std::string shared;
      if (target.empty()) {
        // No isolated CPU is free: drop the housekeeping CPUs from its set, else share an
        // isolated CPU no vCPU holds alone.
        target = vcpu->enforced & isolated;
        if (target.empty()) target = isolated - context.held_cpus(nullptr);
        shared = target.empty()
                     ? "; no fix can be given: every isolated CPU is held by a vCPU pinned to it "
                       "alone, so isolate more CPUs (isolcpus=, nohz_full=) or move a VM"
                     : "; no isolated CPU is free of other pinned threads, so the fix keeps it on "
                       "isolated CPUs it shares with them";
      }
      if (vcpu->one_to_one) target = one_cpu(target, *vcpu);
      auto finding = make_finding("offline-or-housekeeping-cpu", Severity::warning, {vm}, {vcpu},
                                  housekeeping);
      finding.message = fmt::format(
          "{} is pinned to {}, outside the host's isolated CPUs {}, so kernel housekeeping "
          "(timers, RCU, interrupts) keeps interrupting it{}",
          describe(*vcpu), cpus_phrase(housekeeping), isolated.to_list(), shared);
      finding.fix = vcpupin_fix(*vm, {index}, target);
      findings.push_back(std::move(finding));
    }
  }
}

void check_numa_split(const AuditContext& context, std::vector<Finding>& findings) {
  const auto& topology = context.topology();
  if (topology.nodes.size() < 2) return;
  auto node_of = [&topology](int cpu) {
    const auto* found = topology.find(cpu);
    return found == nullptr ? -1 : found->node;
  };
  for (const auto* vm : running_vms(context)) {
    const auto vcpus = context.threads_of(*vm, ThreadRole::vcpu);
    // Only a VM whose every vCPU is pinned has a placement of its own: unpinned vCPUs follow
    // the scheduler, which already prefers the memory's node.
    if (vcpus.empty() ||
        !std::all_of(vcpus.begin(), vcpus.end(), [](const auto* v) { return v->pinned; })) {
      continue;
    }
    std::map<int, std::vector<const AuditedThread*>> by_node;
    CpuSet cpus;
    for (const auto* vcpu : vcpus) {
      std::set<int> nodes;
      for (int cpu : vcpu->enforced.cpus()) nodes.insert(node_of(cpu));
      for (int node : nodes) by_node[node].push_back(vcpu);
      cpus = cpus | vcpu->enforced;
    }
    if (by_node.size() > 1) {
      auto home =
          std::max_element(by_node.begin(), by_node.end(), [](const auto& a, const auto& b) {
            return a.second.size() < b.second.size();
          })->first;
      std::vector<int> movers;
      for (const auto& [node, members] : by_node) {
        if (node == home) continue;
        for (const auto* vcpu : members) movers.push_back(vcpu->thread->vcpu);
      }
      CpuSet home_free;
      for (int cpu : context.free_cpus().cpus()) {
        if (node_of(cpu) == home) home_free.add(cpu);
      }
      std::string fix;
      std::string shared;
      if (static_cast<int>(movers.size()) <= home_free.count()) {
        const auto targets = home_free.cpus();
        for (std::size_t i = 0; i < movers.size(); ++i) {
          if (!fix.empty()) fix += " && ";
          CpuSet one;
          one.add(targets[i]);
          fix += vcpupin_fix(*vm, {movers[i]}, one);
        }
      } else {
        // Too few free CPUs on the home node for one each: together on its CPUs that no vCPU
        // holds alone still keeps the guest's memory local.
        CpuSet home_unheld;
        for (int cpu : (context.online() - context.held_cpus(nullptr)).cpus()) {
          if (node_of(cpu) == home) home_unheld.add(cpu);
        }
        fix = vcpupin_fix(*vm, movers, home_unheld);
        shared = fix.empty() ? fmt::format(
                                   "; no fix can be given: every CPU of node {} is held by a vCPU "
                                   "pinned to it alone",
                                   home)
                             : fmt::format(
                                   "; node {} has too few free CPUs for one each, so the fix "
                                   "lets them share {} there",
                                   home, cpus_phrase(home_unheld));
      }
      auto finding = make_finding("numa-split", Severity::warning, {vm}, vcpus, cpus);
      std::vector<std::string> parts;
      for (const auto& [node, members] : by_node) {
        parts.push_back(fmt::format("{} on node {}", members.size(), node));
      }
      finding.message = fmt::format(
          "the vCPUs of {} are pinned across NUMA nodes ({} vCPUs), so the guest, which sees one "
          "node, pays remote-memory latency it cannot schedule around{}",
          vm->display_name(), fmt::join(parts, ", "), shared);
      finding.fix = fix;
      findings.push_back(std::move(finding));
      continue;
    }
    const int home = by_node.begin()->first;
    const auto* memory = context.memory_of(*vm);
    if (memory == nullptr || home < 0) continue;
    std::uint64_t total = 0;
    std::uint64_t remote = 0;
    std::map<int, std::uint64_t> remote_by_node;
    for (const auto& [node, kib] : *memory) {
      total += kib;
      if (node != home) {
        remote += kib;
        remote_by_node[node] += kib;
      }
    }
    if (total == 0 || remote * 2 <= total) continue;
    std::vector<std::string> from;
    for (const auto& [node, kib] : remote_by_node) from.push_back(std::to_string(node));
    auto finding = make_finding("numa-split", Severity::warning, {vm}, vcpus, cpus);
    finding.message = fmt::format(
        "{}% of the memory of {} ({} MiB) is on node {} while its vCPUs are pinned to node {}, so "
        "most of its memory accesses cross the interconnect",
        remote * 100 / total, vm->display_name(), remote / 1024, fmt::join(from, ","), home);
    finding.fix = fmt::format("migratepages {} {} {}", vm->pid, fmt::join(from, ","), home);
    findings.push_back(std::move(finding));
  }
}

}  // namespace vcpumap::audit
