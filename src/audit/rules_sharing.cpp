// Rules about VMs getting in each other's way on the host's CPUs: shared-pcpu,
// smt-sibling-shared, emulator-on-vcpu-cpu, floating-vcpu.
#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "audit/context.h"

namespace vcpumap::audit {
namespace {

// The distinct VMs of some threads, in the snapshot's order of first appearance.
std::vector<const Vm*> vms_of(const std::vector<const AuditedThread*>& threads) {
  std::vector<const Vm*> vms;
  for (const auto* audited : threads) {
    if (std::find(vms.begin(), vms.end(), audited->vm) == vms.end()) vms.push_back(audited->vm);
  }
  return vms;
}

std::string list_threads(const std::vector<const AuditedThread*>& threads) {
  std::vector<std::string> parts;
  for (const auto* audited : threads) parts.push_back(describe_with_vm(*audited));
  if (parts.size() <= 2) return fmt::format("{}", fmt::join(parts, " and "));
  const auto last = parts.back();
  parts.pop_back();
  return fmt::format("{} and {}", fmt::join(parts, ", "), last);
}

bool nova_shared(const Vm& vm) {
  return vm.libvirt && vm.libvirt->nova && vm.libvirt->nova->cpu_policy != "dedicated";
}

// `vm` first, then the others in order.
std::vector<const Vm*> fix_first(const Vm* vm, std::vector<const Vm*> vms) {
  std::erase(vms, vm);
  vms.insert(vms.begin(), vm);
  return vms;
}

// Gives each listed vCPU of `vm` a CPU of its own from `targets`: commands joined by &&, or ""
// when there are too few.
std::string spread_fix(const Vm& vm, const std::vector<const AuditedThread*>& vcpus,
                       const CpuSet& targets) {
  const auto cpus = targets.cpus();
  if (vcpus.empty() || cpus.size() < vcpus.size()) return {};
  std::string fix;
  for (std::size_t i = 0; i < vcpus.size(); ++i) {
    CpuSet one;
    one.add(cpus[i]);
    if (!fix.empty()) fix += " && ";
    fix += vcpupin_fix(vm, {vcpus[i]->thread->vcpu}, one);
  }
  return fix;
}

std::vector<const AuditedThread*> of_vm(const std::vector<const AuditedThread*>& threads,
                                        const Vm* vm) {
  std::vector<const AuditedThread*> result;
  for (const auto* audited : threads) {
    if (audited->vm == vm) result.push_back(audited);
  }
  return result;
}

// Moves one vCPU off `shared`: to a free CPU, else one no vCPU holds alone, else any other
// online CPU; "" on a host with no other CPU.
std::string move_one_fix(const AuditContext& context, const Vm& vm, const AuditedThread& vcpu,
                         const CpuSet& shared) {
  const auto others = context.online() - shared;
  for (const auto& candidates :
       {context.free_cpus(&vcpu) - shared, others - context.held_cpus(nullptr), others}) {
    if (candidates.empty()) continue;
    CpuSet one;
    one.add(candidates.cpus().front());
    return vcpupin_fix(vm, {vcpu.thread->vcpu}, one);
  }
  return {};
}

struct SharedGroup {
  Severity severity = Severity::warning;
  std::vector<const AuditedThread*> threads;
  CpuSet cpus;
};

void report_shared(const AuditContext& context, const SharedGroup& group,
                   std::vector<Finding>& findings) {
  const auto vms = vms_of(group.threads);
  std::vector<const AuditedThread*> solo;
  std::vector<const AuditedThread*> loose;
  for (const auto* audited : group.threads) (audited->one_to_one ? solo : loose).push_back(audited);
  std::string message;
  std::string fix;
  const Vm* mover = vms.back();
  if (group.severity == Severity::error) {
    message = fmt::format(
        "{} are each pinned to {} alone, so they take turns on it and each guest sees the other's "
        "load as steal time",
        list_threads(group.threads), cpus_phrase(group.cpus));
    const auto moving = of_vm(group.threads, mover);
    fix = spread_fix(*mover, moving, context.free_cpus());
    // Too few free CPUs for all: moving one vCPU off the shared CPU still ends the turn-taking.
    if (fix.empty()) fix = move_one_fix(context, *mover, *moving.front(), group.cpus);
  } else {
    if (!loose.empty()) mover = loose.back()->vm;
    message = solo.empty()
                  ? fmt::format(
                        "{} are pinned to sets that overlap on {}, so these VMs compete for "
                        "those CPUs",
                        list_threads(group.threads), cpus_phrase(group.cpus))
                  : fmt::format(
                        "{} {} pinned to {} alone, but {} may run there too, so that CPU is "
                        "not the dedicated CPU the pinning meant",
                        list_threads(solo), solo.size() == 1 ? "is" : "are",
                        cpus_phrase(group.cpus), list_threads(loose));
    const auto moving = of_vm(group.threads, mover);
    std::vector<int> indices;
    CpuSet target = context.online() - context.held_cpus(nullptr) - group.cpus;
    for (const auto* audited : moving) {
      indices.push_back(audited->thread->vcpu);
      if (!audited->one_to_one) target = target & audited->enforced;
    }
    if (target.empty()) target = context.free_cpus();
    fix = vcpupin_fix(*mover, indices, target);
    if (fix.empty()) fix = move_one_fix(context, *mover, *moving.front(), group.cpus);
  }
  auto finding =
      make_finding("shared-pcpu", group.severity, fix_first(mover, vms), group.threads, group.cpus);
  if (fix.empty()) message += "; no fix can be given: this host has no other online CPU";
  finding.message = std::move(message);
  finding.fix = std::move(fix);
  findings.push_back(std::move(finding));
}

// Proxmox VE's `affinity:` applies to every thread of the VM, so its emulator threads share the
// vCPUs' CPUs whatever the VM's size: says so and gives the per-thread pinning Proxmox lacks.
void proxmox_emulator_finding(const AuditContext& context, const Vm& vm,
                              std::vector<Finding>& findings) {
  const auto& config = *vm.proxmox->config;
  const auto vcpus = context.threads_of(vm, ThreadRole::vcpu);
  std::vector<const AuditedThread*> emulator;
  for (const auto* audited : context.helper_threads_of(vm)) {
    if (is_emulator_role(audited->thread->role)) emulator.push_back(audited);
  }
  CpuSet vcpu_cpus;
  for (const auto* vcpu : vcpus) vcpu_cpus = vcpu_cpus | vcpu->enforced;
  CpuSet overlap;
  for (const auto* audited : emulator) overlap = overlap | (audited->enforced & vcpu_cpus);
  if (vcpus.empty() || emulator.empty() || overlap.empty()) return;
  // Each vCPU gets a CPU of the affinity and the emulator the rest. An affinity with no CPU to
  // spare grows by a free one first (qm set), so that the pins stay within it.
  auto affinity = *config.affinity & context.online();
  auto cpus = affinity.cpus();  // the vCPUs keep the affinity's CPUs, a spare one comes last
  std::vector<std::string> commands;
  if (cpus.size() <= vcpus.size()) {
    const auto spare = context.online() - affinity - context.held_cpus(&vm);
    if (!spare.empty()) {
      cpus.push_back(spare.cpus().front());
      affinity.add(cpus.back());
      commands.push_back(
          fmt::format("qm set {} --affinity {}", vm.proxmox->vmid, affinity.to_list()));
    }
  }
  CpuSet emulator_target;
  if (cpus.size() > vcpus.size()) {
    for (std::size_t i = 0; i < vcpus.size(); ++i) {
      CpuSet one;
      one.add(cpus[i]);
      commands.push_back(vcpupin_fix(vm, {vcpus[i]->thread->vcpu}, one));
    }
    for (std::size_t i = vcpus.size(); i < cpus.size(); ++i) emulator_target.add(cpus[i]);
  }
  if (emulator_target.empty()) {
    commands.clear();  // no CPU to give the emulator: no pinning keeps them apart
  } else {
    commands.push_back(
        fmt::format("vcpumap emulatorpin {} {}", vm_argument(vm), emulator_target.to_list()));
  }
  std::vector<const AuditedThread*> involved = emulator;
  involved.insert(involved.end(), vcpus.begin(), vcpus.end());
  auto finding = make_finding("emulator-on-vcpu-cpu", Severity::warning, {&vm}, involved, overlap);
  std::vector<int> tids;
  for (const auto* audited : emulator) tids.push_back(audited->thread->tid);
  std::sort(tids.begin(), tids.end());
  finding.message = fmt::format(
      "the emulator threads of {} (tids {}) may run on {} with its vCPUs, because Proxmox's "
      "'affinity: {}' in {}.conf applies to every thread of the VM, emulator threads included, so "
      "device emulation and I/O take time from the vCPUs{}; Proxmox can't pin per thread: pin "
      "the vCPUs and the emulator apart (again after each start)",
      vm.display_name(), fmt::join(tids, ", "), cpus_phrase(overlap), config.affinity_text,
      vm.proxmox->vmid, seen_on(emulator, overlap));
  if (commands.empty()) {
    finding.message +=
        "; no fix can be given: every host CPU is either one of the vCPUs' or held by another VM's "
        "vCPU, so free a CPU (or give the VM a vCPU fewer) to give the emulator threads one";
  }
  finding.fix = fmt::format("{}", fmt::join(commands, " && "));
  findings.push_back(std::move(finding));
}

bool has_proxmox_affinity(const Vm& vm) {
  return vm.proxmox && vm.proxmox->config && vm.proxmox->config->affinity;
}

}  // namespace

void check_shared_pcpu(const AuditContext& context, std::vector<Finding>& findings) {
  // One finding per distinct set of threads, gathering the CPUs they share.
  std::map<std::vector<int>, SharedGroup> groups;
  for (int cpu : context.online().cpus()) {
    std::vector<const AuditedThread*> on;
    for (const auto& audited : context.threads()) {
      if (audited.thread->role == ThreadRole::vcpu && audited.pinned &&
          audited.enforced.contains(cpu)) {
        on.push_back(&audited);
      }
    }
    const auto vms = vms_of(on);
    if (vms.size() < 2) continue;
    std::vector<const AuditedThread*> solo;
    for (const auto* audited : on) {
      if (audited->one_to_one) solo.push_back(audited);
    }
    Severity severity = Severity::warning;
    if (vms_of(solo).size() >= 2) {
      severity = Severity::error;
    } else if (solo.empty() &&
               std::all_of(vms.begin(), vms.end(), [](const Vm* vm) { return nova_shared(*vm); })) {
      continue;  // nova's shared policy floats vCPUs over cpu_shared_set by design
    }
    std::vector<int> key;
    for (const auto* audited : on) key.push_back(audited->thread->tid);
    auto& group = groups[key];
    group.severity = severity;
    group.threads = on;
    group.cpus.add(cpu);
  }
  for (const auto& [key, group] : groups) report_shared(context, group, findings);
}

void check_smt_sibling_shared(const AuditContext& context, std::vector<Finding>& findings) {
  std::set<std::string> seen_cores;
  for (const auto& cpu : context.topology().cpus) {
    const auto core = cpu.siblings & context.online();
    if (core.count() < 2 || !seen_cores.insert(core.to_list()).second) continue;
    std::vector<const AuditedThread*> members;
    for (const auto& audited : context.threads()) {
      if (audited.thread->role == ThreadRole::vcpu && audited.pinned &&
          audited.enforced.is_subset_of(core)) {
        members.push_back(&audited);
      }
    }
    // Two VMs on the same lone CPU are shared-pcpu's business; here they must use two threads.
    bool siblings = false;
    CpuSet cpus;
    for (const auto* x : members) {
      cpus = cpus | x->enforced;
      for (const auto* y : members) {
        if (x->vm != y->vm && (x->enforced | y->enforced).count() > 1) siblings = true;
      }
    }
    if (!siblings) continue;
    const auto vms = vms_of(members);
    const Vm* mover = vms.back();
    const auto moving = of_vm(members, mover);
    // A core whose every thread is free, to move the last VM's vCPUs to.
    CpuSet target;
    const auto free = context.free_cpus();
    for (const auto& other : context.topology().cpus) {
      const auto other_core = other.siblings & context.online();
      if (!other_core.empty() && other_core.is_subset_of(free) &&
          other_core.count() >= static_cast<int>(moving.size())) {
        target = other_core;
        break;
      }
    }
    auto finding =
        make_finding("smt-sibling-shared", Severity::warning, fix_first(mover, vms), members, cpus);
    finding.message = fmt::format(
        "{} are pinned to SMT siblings {} of one core, so they share its execution units and "
        "caches and each VM slows the other",
        list_threads(members), cpus.to_list());
    finding.fix = spread_fix(*mover, moving, target);
    if (finding.fix.empty()) {
      // No whole core is free: a CPU of another core is still better than this one's sibling,
      // first one no pinned thread may use, else one no vCPU holds alone (overlapping a pinned
      // set is a smaller sharing than an SMT sibling that runs all the time).
      const auto elsewhere = context.online() - core;
      const auto free_elsewhere = free & elsewhere;
      const auto unheld = elsewhere - context.held_cpus(nullptr);
      finding.fix = spread_fix(*mover, moving, free_elsewhere);
      if (!finding.fix.empty()) {
        finding.message += fmt::format(
            "; no whole core is free, so the fix moves {} to {} of other cores, whose SMT "
            "siblings may still be busy",
            mover->display_name(), cpus_phrase(free_elsewhere));
      } else if (!(finding.fix = spread_fix(*mover, moving, unheld)).empty()) {
        finding.message += fmt::format(
            "; no CPU of another core is free, so the fix moves {} to {}, which other pinned "
            "vCPUs may also use: a lesser sharing than a sibling",
            mover->display_name(), cpus_phrase(unheld));
      } else {
        finding.message +=
            "; no fix can be given: every CPU of the other cores is held by a vCPU pinned to it "
            "alone, so moving one there would share a whole CPU; free a CPU first";
      }
    }
    findings.push_back(std::move(finding));
  }
}

void check_emulator_on_vcpu_cpu(const AuditContext& context, std::vector<Finding>& findings) {
  for (const auto& vm : context.input().snapshot.vms) {
    if (vm.pid > 0 && has_proxmox_affinity(vm)) proxmox_emulator_finding(context, vm, findings);
  }
  const auto held = context.held_cpus(nullptr);
  if (held.empty()) return;
  // With isolated CPUs, the housekeeping CPUs are where emulator and I/O threads belong.
  auto target = context.online() - held;
  if (const auto housekeeping = target - context.topology().isolated;
      !context.topology().isolated.empty() && !housekeeping.empty()) {
    target = housekeeping;
  }
  for (const auto& vm : context.input().snapshot.vms) {
    if (vm.pid <= 0) continue;
    // Emulator threads go together (virsh emulatorpin moves them all), I/O threads one by one.
    std::map<std::string, std::vector<const AuditedThread*>> groups;
    for (const auto* audited : context.helper_threads_of(vm)) {
      const auto role = audited->thread->role;
      // A Proxmox affinity's emulator threads have their finding above.
      if (has_proxmox_affinity(vm) && is_emulator_role(role)) continue;
      const auto key = role == ThreadRole::iothread ? "io:" + audited->thread->iothread
                       : role == ThreadRole::vhost  ? std::string("vhost")
                                                    : std::string("emulator");
      groups[key].push_back(audited);
    }
    for (const auto& [key, threads] : groups) {
      CpuSet overlap;
      for (const auto* audited : threads) overlap = overlap | (audited->enforced & held);
      if (overlap.empty()) continue;
      std::vector<const AuditedThread*> holders;
      for (int cpu : overlap.cpus()) {
        for (const auto* holder : context.holders(cpu)) holders.push_back(holder);
      }
      std::vector<const Vm*> vms{&vm};
      for (const auto* other : vms_of(holders)) vms.push_back(other);
      auto involved = threads;
      involved.insert(involved.end(), holders.begin(), holders.end());
      // A flavor with hw:emulator_threads_policy promised better: then it is an error.
      const std::string policy = key == "emulator" && vm.libvirt && vm.libvirt->nova
                                     ? vm.libvirt->nova->emulator_threads_policy
                                     : std::string();
      auto finding =
          make_finding("emulator-on-vcpu-cpu", policy.empty() ? Severity::warning : Severity::error,
                       vms, involved, overlap);
      std::vector<int> tids;
      for (const auto* audited : threads) tids.push_back(audited->thread->tid);
      std::sort(tids.begin(), tids.end());
      const auto subject =
          threads.size() == 1
              ? describe_with_vm(*threads.front())
              : fmt::format("the {} threads of {} (tids {})", key == "vhost" ? "vhost" : "emulator",
                            vm.display_name(), fmt::join(tids, ", "));
      finding.message = fmt::format(
          "{} may run on {}, where {} {} pinned, so device emulation and I/O take time from {}{}",
          subject, cpus_phrase(overlap), list_threads(holders), holders.size() == 1 ? "is" : "are",
          holders.size() == 1 ? "that vCPU" : "those vCPUs", seen_on(threads, overlap));
      if (!policy.empty()) {
        finding.message +=
            fmt::format(", which nova's hw:emulator_threads_policy={} rules out", policy);
      }
      if (!target.empty()) {
        finding.fix = pin_group_fix(vm, threads, target);
      } else {
        // Every CPU is held by a vCPU pinned to it alone: the least harm is to keep the
        // threads on this VM's own vCPUs' CPUs, so only its own guest pays for its devices.
        CpuSet enforced;
        for (const auto* audited : threads) enforced = enforced | audited->enforced;
        const auto own = context.own_held_cpus(vm);
        if (!own.empty() && !enforced.is_subset_of(own)) {
          finding.fix = pin_group_fix(vm, threads, own);
          finding.message += fmt::format(
              "; no host CPU is free of a vCPU pinned to it alone, so the fix keeps them on {} of "
              "this VM's own vCPUs, which then pay for its devices alone, until a CPU is freed",
              cpus_phrase(own));
        } else {
          finding.message +=
              own.empty() ? "; no fix can be given: every host CPU is held by another VM's vCPU "
                            "pinned to it alone, so free one (unpin or move a vCPU) to give them"
                          : "; no better pinning can be given: they already stay on this VM's "
                            "own vCPUs' CPUs and every other host CPU is held by a vCPU pinned "
                            "to it alone, so free one to give them a CPU of their own";
        }
      }
      findings.push_back(std::move(finding));
    }
  }
}

void check_floating_vcpu(const AuditContext& context, std::vector<Finding>& findings) {
  const auto target = context.online() - context.held_cpus(nullptr);
  for (const auto& vm : context.input().snapshot.vms) {
    if (vm.pid <= 0) continue;
    const auto held = context.held_cpus(&vm);
    if (held.empty()) continue;
    std::vector<const AuditedThread*> floating;
    CpuSet overlap;
    for (const auto* vcpu : context.threads_of(vm, ThreadRole::vcpu)) {
      if (vcpu->pinned || (vcpu->enforced & held).empty()) continue;
      floating.push_back(vcpu);
      overlap = overlap | (vcpu->enforced & held);
    }
    if (floating.empty()) continue;
    std::vector<const AuditedThread*> holders;
    for (int cpu : overlap.cpus()) {
      for (const auto* holder : context.holders(cpu)) {
        if (holder->vm != &vm) holders.push_back(holder);
      }
    }
    std::vector<const Vm*> vms{&vm};
    for (const auto* other : vms_of(holders)) vms.push_back(other);
    auto involved = floating;
    involved.insert(involved.end(), holders.begin(), holders.end());
    auto finding = make_finding("floating-vcpu", Severity::warning, vms, involved, overlap);
    std::vector<int> indices;
    std::vector<std::string> names;
    for (const auto* vcpu : floating) {
      indices.push_back(vcpu->thread->vcpu);
      names.push_back(describe(*vcpu));
    }
    finding.message = fmt::format(
        "unpinned {} of {} may run on {}, held by {}, so its load lands on CPUs other VMs were "
        "given as their own{}",
        fmt::join(names, ", "), vm.display_name(), cpus_phrase(overlap), list_threads(holders),
        seen_on(floating, overlap));
    if (!target.empty()) {
      finding.fix = vcpupin_fix(vm, indices, target);
    } else if (const auto own = context.own_held_cpus(vm); !own.empty()) {
      // Every CPU is someone's: this VM's own dedicated CPUs are the ones it may take from.
      finding.fix = vcpupin_fix(vm, indices, own);
      finding.message += fmt::format(
          "; no host CPU is free of a vCPU pinned to it alone, so the fix confines it to {}, held "
          "by this VM's own vCPUs, which then share with it instead of other VMs",
          cpus_phrase(own));
    } else {
      // Nothing of its own either: any placement takes from another VM. Two CPUs, where it ran
      // last first, narrow it to two vCPUs' CPUs (a shared-pcpu warning) instead of every VM's;
      // one CPU would make two VMs each pinned to it alone, an error.
      auto narrowed = one_cpu(overlap, *floating.front());
      if (const auto rest = overlap - narrowed; !rest.empty()) narrowed.add(rest.cpus().front());
      if (narrowed.count() == 2 && context.is_pinned(narrowed)) {
        finding.fix = vcpupin_fix(vm, indices, narrowed);
        finding.message += fmt::format(
            "; every host CPU is held by another VM's vCPU pinned to it alone, so the fix "
            "confines it to {} (where it ran last first): it then takes time from those vCPUs "
            "only, not every VM's, until a CPU is freed for it",
            cpus_phrase(narrowed));
      } else {
        finding.message +=
            "; no fix can be given: every host CPU is held by another VM's vCPU pinned to it "
            "alone and this host has too few CPUs to narrow it, so free a CPU for it";
      }
    }
    findings.push_back(std::move(finding));
  }
}

}  // namespace vcpumap::audit
