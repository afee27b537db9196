#include "pin/pin.h"

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "core/identify.h"
#include "util/text.h"

namespace vcpumap::pin {
namespace {

// The host's CPUs: `present`, else the CPUs the topology lists, else the online ones (a
// fixture tree may lack a file).
CpuSet host_cpus(const Topology& topology) {
  if (!topology.present.empty()) return topology.present;
  CpuSet cpus;
  for (const auto& cpu : topology.cpus) cpus.add(cpu.cpu);
  return cpus.empty() ? topology.online : cpus;
}

CpuSet online_cpus(const Topology& topology) {
  return topology.online.empty() ? host_cpus(topology) : topology.online;
}

std::string vm_label(const Vm& vm) {
  return printable(vm.display_name());
}

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// Every CPU of `cpus` must be present and online; the first that is not is named.
Status check_cpus(const CpuSet& cpus, const Topology& topology, std::string_view text) {
  const CpuSet host = host_cpus(topology);
  const CpuSet online = online_cpus(topology);
  const auto shown = printable(text);
  if (cpus.empty()) {
    return make_error(ExitCode::bad_input,
                      "'{}' leaves no CPU to run on; name at least one of the online CPUs {}",
                      shown, online.to_list());
  }
  for (const int cpu : cpus.cpus()) {
    if (cpu >= host.end()) {
      return make_error(ExitCode::bad_input, "CPU {} in '{}' is beyond this host's CPUs {}", cpu,
                        shown, host.to_list());
    }
    if (!host.contains(cpu)) {
      return make_error(ExitCode::bad_input, "CPU {} in '{}' is not one of this host's CPUs {}",
                        cpu, shown, host.to_list());
    }
    if (!online.contains(cpu)) {
      return make_error(ExitCode::bad_input, "CPU {} in '{}' is offline; online CPUs are {}", cpu,
                        shown, online.to_list());
    }
  }
  return Ok{};
}

// The ID iothreadinfo shows for a QEMU I/O thread object: N for libvirt's "iothreadN".
std::string shown_iothread_id(const std::string& object_id) {
  const auto number = parse_indexed_name(object_id, "iothread");
  return number ? fmt::to_string(*number) : object_id;
}

Status plan_vcpu(const Vm& vm, PinPlan& plan) {
  const int vcpu = plan.target.vcpu;
  CpuSet known;  // vCPU numbers, kept in a CpuSet to print them as "0-3"
  if (vm.libvirt) {
    // libvirt's definition knows every vCPU, also of an inactive domain without threads.
    const auto count = std::max<std::size_t>(
        static_cast<std::size_t>(std::max(vm.libvirt->vcpus, 0)), vm.libvirt->vcpu_pins.size());
    known = CpuSet::first_n(static_cast<int>(count));
  }
  for (const auto* thread : vm.vcpus()) {
    if (!vm.libvirt) known.add(thread->vcpu);
    if (thread->vcpu == vcpu) plan.tids.push_back(thread->tid);
  }
  if (vcpu >= 0 && known.contains(vcpu)) return Ok{};
  if (known.empty()) {
    return make_error(ExitCode::bad_input,
                      "VM '{}' has no vCPU {}; vcpumap found no vCPU threads in it "
                      "(see 'vcpumap threads {}')",
                      vm_label(vm), vcpu, vm.pid);
  }
  return make_error(ExitCode::bad_input, "VM '{}' has no vCPU {}; its vCPUs are {}", vm_label(vm),
                    vcpu, known.to_list());
}

Status plan_iothread(const Vm& vm, PinPlan& plan) {
  const std::string& id = plan.target.iothread;
  const auto iothreads = vm.threads_with(ThreadRole::iothread);
  if (vm.libvirt) {
    CpuSet known;  // libvirt's I/O thread ids are small numbers
    for (const auto& [number, cpus] : vm.libvirt->iothreads) known.add(number);
    const auto wanted = parse_i64(id);
    if (wanted && *wanted >= 0 && *wanted < CpuSet::kMaxCpu &&
        known.contains(static_cast<int>(*wanted))) {
      plan.libvirt_iothread = static_cast<int>(*wanted);
      for (const auto* thread : iothreads) {
        if (shown_iothread_id(thread->iothread) == id) plan.tids.push_back(thread->tid);
      }
      return Ok{};
    }
    if (known.empty()) {
      return make_error(ExitCode::bad_input,
                        "VM '{}' has no I/O thread '{}'; it has no I/O threads", vm_label(vm),
                        printable(id));
    }
    return make_error(ExitCode::bad_input, "VM '{}' has no I/O thread '{}'; its I/O threads are {}",
                      vm_label(vm), printable(id), known.to_list());
  }
  std::string known;
  for (const auto* thread : iothreads) {
    const auto shown = shown_iothread_id(thread->iothread);
    if (shown == id || thread->iothread == id) plan.tids.push_back(thread->tid);
    known += (known.empty() ? "" : ", ") + printable(shown);
  }
  if (!plan.tids.empty()) return Ok{};
  if (known.empty()) {
    return make_error(ExitCode::bad_input,
                      "VM '{}' has no I/O thread '{}'; it has no I/O threads (QEMU's "
                      "-object iothread,id=ID makes one)",
                      vm_label(vm), printable(id));
  }
  return make_error(ExitCode::bad_input, "VM '{}' has no I/O thread '{}'; its I/O threads are {}",
                    vm_label(vm), printable(id), known);
}

// One line for a failed sched_setaffinity, saying what would work.
std::string write_failure(int tid, const CpuSet& cpus, int error) {
  switch (error) {
    case EPERM:
      return fmt::format("not allowed to change the affinity of thread {} ({}); run as root", tid,
                         errno_text(error));
    case ESRCH:
      return fmt::format("thread {} exited while pinning: the VM changed", tid);
    case EINVAL:
      // The kernel refuses a mask with no CPU the thread's cpuset cgroup allows.
      return fmt::format("thread {} may not run on CPUs {}: its cpuset cgroup allows others ({})",
                         tid, cpus.to_list(), errno_text(error));
    default:
      return fmt::format("can't set the affinity of thread {} to {}: {}", tid, cpus.to_list(),
                         errno_text(error));
  }
}

}  // namespace

PinTarget PinTarget::of_vcpu(int vcpu) {
  return PinTarget{PinRole::vcpu, vcpu, {}};
}
PinTarget PinTarget::of_emulator() {
  return PinTarget{PinRole::emulator, -1, {}};
}
PinTarget PinTarget::of_iothread(std::string id) {
  return PinTarget{PinRole::iothread, -1, std::move(id)};
}

std::string describe(const PinTarget& target) {
  switch (target.role) {
    case PinRole::vcpu:
      return fmt::format("vCPU {}", target.vcpu);
    case PinRole::emulator:
      return "the emulator threads";
    case PinRole::iothread:
      return fmt::format("I/O thread {}", printable(target.iothread));
  }
  return "?";
}

Status check_target(const Vm& vm, const PinTarget& target) {
  PinPlan plan;
  plan.target = target;
  switch (target.role) {
    case PinRole::vcpu:
      return plan_vcpu(vm, plan);
    case PinRole::iothread:
      return plan_iothread(vm, plan);
    case PinRole::emulator:
      break;
  }
  return Ok{};
}

Result<PinPlan> plan_pin(const Vm& vm, const Topology& topology, PinTarget target,
                         std::string_view cpulist_text) {
  PinPlan plan;
  plan.target = std::move(target);
  // virsh's vcpupin/emulatorpin/iothreadpin take "r" for "every physical CPU" (virsh.pod):
  // virsh sends a map of all host CPUs, and the threads can only use the online ones.
  if (trim(cpulist_text) == "r") {
    plan.reset = true;
    plan.cpus = online_cpus(topology);
    plan.libvirt_cpus = CpuSet::first_n(topology.affinity_width());
  } else {
    auto cpus = CpuSet::parse_virsh_list(cpulist_text);
    if (!cpus) return cpus.error();
    if (auto checked = check_cpus(*cpus, topology, cpulist_text); !checked) return checked.error();
    plan.cpus = *cpus;
    plan.libvirt_cpus = *cpus;
  }
  Status found = Ok{};
  switch (plan.target.role) {
    case PinRole::vcpu:
      found = plan_vcpu(vm, plan);
      break;
    case PinRole::emulator:
      for (const auto* thread : vm.emulator_threads()) plan.tids.push_back(thread->tid);
      break;
    case PinRole::iothread:
      found = plan_iothread(vm, plan);
      break;
  }
  if (!found) return found.error();
  if (!vm.libvirt && plan.tids.empty()) {
    return make_error(ExitCode::bad_input, "VM '{}' has no threads for {}", vm_label(vm),
                      describe(plan.target));
  }
  return plan;
}

Status apply_affinity(const std::vector<int>& tids, const CpuSet& cpus,
                      const AffinityCalls& calls) {
  // Record every old affinity first, so a failure part-way can be undone.
  std::vector<CpuSet> old;
  old.reserve(tids.size());
  for (const int tid : tids) {
    auto reading = calls.read(tid);
    if (reading.error == ESRCH) {
      return make_error(ExitCode::failure,
                        "thread {} exited: the VM changed while pinning; nothing was changed, "
                        "try again",
                        tid);
    }
    if (reading.error != 0) {
      return make_error(ExitCode::failure,
                        "can't read the affinity of thread {} ({}); nothing was changed", tid,
                        errno_text(reading.error));
    }
    old.push_back(std::move(reading.cpus));
  }
  for (std::size_t i = 0; i < tids.size(); ++i) {
    const int error = calls.write(tids[i], cpus);
    if (error == 0) continue;
    std::string unrestored;
    for (std::size_t j = 0; j < i; ++j) {
      if (const int undo = calls.write(tids[j], old[j]); undo != 0) {
        unrestored += fmt::format("{}thread {} ({})", unrestored.empty() ? "" : ", ", tids[j],
                                  errno_text(undo));
      }
    }
    const auto cause = write_failure(tids[i], cpus, error);
    if (unrestored.empty()) {
      return make_error(ExitCode::failure, "{}; nothing was changed", cause);
    }
    return make_error(ExitCode::failure,
                      "{}; could not give back the old affinity of {}: check 'vcpumap threads'",
                      cause, unrestored);
  }
  return Ok{};
}

Status check_scope(const Vm& vm, libvirt::Scope scope) {
  const bool live = scope == libvirt::Scope::live || scope == libvirt::Scope::live_and_config;
  const bool config = scope == libvirt::Scope::config || scope == libvirt::Scope::live_and_config;
  if (vm.libvirt) {
    // As virsh: "Requested operation is not valid: domain is not running".
    if (live && !vm.libvirt->active) {
      return make_error(ExitCode::failure,
                        "VM '{}' is not running, so --live has nothing to change; use --config "
                        "to change its definition",
                        vm_label(vm));
    }
    return Ok{};
  }
  if (config) {
    return make_error(ExitCode::bad_input,
                      "VM '{}' is not managed by libvirt: it has no persistent configuration for "
                      "--config to change; drop --config to change the running threads",
                      vm_label(vm));
  }
  return Ok{};
}

Result<PinOutcome> apply_pin(const Vm& vm, const PinPlan& plan, libvirt::Scope scope,
                             const libvirt::Connection* connection) {
  if (auto scoped = check_scope(vm, scope); !scoped) return scoped.error();
  PinOutcome outcome;
  if (!vm.libvirt && vm.libvirt_unanswered) {
    return make_error(ExitCode::failure,
                      "VM '{}' is a libvirt domain but libvirt did not answer; nothing was "
                      "changed: pinning it behind libvirt's back would leave its cgroups and XML "
                      "wrong",
                      vm_label(vm));
  }
  if (vm.libvirt) {
    if (connection == nullptr) {
      return make_error(ExitCode::failure,
                        "VM '{}' is a libvirt domain but libvirt can't be reached; pinning it "
                        "behind libvirt's back would leave its cgroups and XML wrong",
                        vm_label(vm));
    }
    outcome.through_libvirt = true;
    const auto& uuid = vm.libvirt->uuid;
    Status done = Ok{};
    switch (plan.target.role) {
      case PinRole::vcpu:
        done = connection->pin_vcpu(uuid, plan.target.vcpu, plan.libvirt_cpus, scope);
        break;
      case PinRole::emulator:
        done = connection->pin_emulator(uuid, plan.libvirt_cpus, scope);
        break;
      case PinRole::iothread:
        done = connection->pin_iothread(uuid, plan.libvirt_iothread, plan.libvirt_cpus, scope);
        break;
    }
    if (!done) return done.error();
    return outcome;
  }
  if (auto applied = apply_affinity(plan.tids, plan.cpus); !applied) return applied.error();
  outcome.tids = plan.tids;
  return outcome;
}

}  // namespace vcpumap::pin
