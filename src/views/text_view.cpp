#include "views/text_view.h"

#include <fmt/format.h>

#include "util/text.h"
#include "views/table.h"

namespace vcpumap::views {
namespace {

std::string plural(int count, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", count, count == 1 ? one : many);
}

std::string optional_count(const std::optional<std::uint64_t>& value) {
  return value ? fmt::to_string(*value) : "n/a";
}

std::string cpu_time(const VmThread& thread, const Snapshot& snapshot) {
  if (thread.facts.cpu_time_ns) return format_seconds(thread.facts.cpu_time_ns);
  // Without schedstat, the tick counts are all there is.
  const auto ticks = thread.facts.cpu_ticks();
  if (!ticks) return "n/a";
  return fmt::format("{:.2f}s", static_cast<double>(*ticks) /
                                    static_cast<double>(snapshot.clock_ticks_per_second));
}

std::string thread_role(const VmThread& thread) {
  switch (thread.role) {
    case ThreadRole::vcpu:
      return fmt::format("vcpu {}", thread.vcpu);
    case ThreadRole::iothread:
      return fmt::format("iothread {}", printable(thread.iothread));
    case ThreadRole::emulator_main:
      return "emulator (main loop)";
    case ThreadRole::emulator_monitor:
      return "emulator (monitor)";
    case ThreadRole::emulator_other:
      return "emulator";
    case ThreadRole::vhost:
      return "vhost";
  }
  return "unknown";
}

std::string vm_heading(const Vm& vm) {
  std::string heading = fmt::format("VM {}", printable(vm.display_name()));
  if (vm.libvirt) {
    if (vm.libvirt->id >= 0) heading += fmt::format("  id {}", vm.libvirt->id);
    heading += fmt::format("  {}", vm.libvirt->state);
  }
  if (vm.pid > 0) heading += fmt::format("  pid {}", vm.pid);
  heading += fmt::format("  {}", to_string(vm.hypervisor));
  if (!vm.uuid.empty()) heading += fmt::format("  uuid {}", printable(vm.uuid));
  const int vcpus =
      vm.pid > 0 || !vm.libvirt ? static_cast<int>(vm.vcpus().size()) : vm.libvirt->vcpus;
  heading += fmt::format("  {}", plural(vcpus, "vCPU", "vCPUs"));
  heading += '\n';
  if (vm.libvirt && vm.libvirt->nova) {
    const auto& nova = *vm.libvirt->nova;
    heading += fmt::format("  nova: instance {}, flavor {}, project {}", printable(nova.name),
                           printable(nova.flavor), printable(nova.project));
    if (!nova.cpu_policy.empty()) heading += fmt::format(", hw:cpu_policy {}", nova.cpu_policy);
    heading += '\n';
  }
  return heading;
}

// What libvirt's definition pins, for a domain with no process to look at.
std::string configured_pinning(const LibvirtDomain& domain) {
  std::string text = "  configured pinning:";
  for (std::size_t vcpu = 0; vcpu < domain.vcpu_pins.size(); ++vcpu) {
    text += fmt::format(" vcpu{} {};", vcpu, domain.vcpu_pins[vcpu].to_list());
  }
  return text + fmt::format(" emulator {}\n", domain.emulator_pin.to_list());
}

}  // namespace

std::string format_seconds(const std::optional<std::uint64_t>& ns) {
  if (!ns) return "n/a";
  return fmt::format("{:.2f}s", static_cast<double>(*ns) / 1e9);
}

std::string render_host_line(const Topology& topology) {
  std::string line = fmt::format(
      "host: {} online ({}), {}, {}, {} per core, {}",
      plural(topology.online.count(), "CPU", "CPUs"), topology.online.to_list(),
      plural(topology.packages, "package", "packages"), plural(topology.cores, "core", "cores"),
      plural(topology.threads_per_core, "thread", "threads"),
      plural(static_cast<int>(topology.nodes.size()), "NUMA node", "NUMA nodes"));
  if (!topology.hypervisor_vendor.empty()) {
    line += fmt::format(", itself a VM (hypervisor vendor {})", topology.hypervisor_vendor);
  }
  return line + '\n';
}

std::string render_list(const Snapshot& snapshot) {
  std::string text = render_host_line(snapshot.topology);
  if (snapshot.vms.empty()) text += "no VMs found (QEMU, Firecracker, cloud-hypervisor, crosvm)\n";
  for (const auto& vm : snapshot.vms) {
    text += '\n' + vm_heading(vm);
    if (vm.pid == 0) {
      if (vm.libvirt) text += configured_pinning(*vm.libvirt);
      continue;
    }
    Table vcpus({"VCPU", "TID", "CPU", "STATE", "AFFINITY", "CPU-TIME", "RUN-DELAY", "MIGRATIONS"});
    for (const auto* thread : vm.vcpus()) {
      const auto& facts = thread->facts;
      vcpus.add_row({fmt::to_string(thread->vcpu), fmt::to_string(thread->tid),
                     fmt::to_string(facts.last_cpu), std::string(1, facts.state),
                     facts.affinity.to_list(), cpu_time(*thread, snapshot),
                     format_seconds(facts.run_delay_ns), optional_count(facts.migrations)});
    }
    if (!vcpus.empty()) text += vcpus.render("  ");
    const auto emulator = vm.emulator_threads();
    CpuSet emulator_cpus;
    for (const auto* thread : emulator) emulator_cpus.add(thread->facts.last_cpu);
    text += fmt::format("  emulator: {}, affinity {}, last on CPU {}\n",
                        plural(static_cast<int>(emulator.size()), "thread", "threads"),
                        vm.emulator_affinity().to_list(), emulator_cpus.to_list());
    for (const auto* thread : vm.threads_with(ThreadRole::iothread)) {
      text +=
          fmt::format("  iothread {}: tid {}, CPU {}, affinity {}\n", printable(thread->iothread),
                      thread->tid, thread->facts.last_cpu, thread->facts.affinity.to_list());
    }
  }
  return text;
}

std::string render_threads(const Vm& vm, const Snapshot& snapshot) {
  std::string text = vm_heading(vm);
  Table table({"TID", "NAME", "ROLE", "CPU", "STATE", "AFFINITY", "CPU-TIME", "RUN-DELAY",
               "MIGRATIONS", "VCSW", "NVCSW"});
  for (const auto& thread : vm.threads) {
    const auto& facts = thread.facts;
    table.add_row({fmt::to_string(thread.tid), printable(thread.name), thread_role(thread),
                   fmt::to_string(facts.last_cpu), std::string(1, facts.state),
                   facts.affinity.to_list(), cpu_time(thread, snapshot),
                   format_seconds(facts.run_delay_ns), optional_count(facts.migrations),
                   optional_count(facts.voluntary_switches),
                   optional_count(facts.involuntary_switches)});
  }
  text += table.render();
  text +=
      "\nCPU is the CPU each thread last ran on (ps -L -o psr); 'ps -o psr' shows only the main "
      "thread's.\n";
  return text;
}

}  // namespace vcpumap::views
