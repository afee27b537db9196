#include "views/virsh_view.h"

#include <cstdio>

#include <fmt/format.h>

namespace vcpumap::views {

namespace {

std::string affinity_line(const CpuSet& affinity, int width, bool pretty) {
  if (pretty)
    return fmt::format("{:<15} {} (out of {})\n", "CPU Affinity:", affinity.to_list(), width);
  return fmt::format("{:<15} {}\n", "CPU Affinity:", affinity.to_yn(width));
}

// virshVcpuinfoInactive: the configured pinning, N/A for the rest (and "CPU time" has no colon).
std::string render_inactive_vcpuinfo(const LibvirtDomain& domain, int width, bool pretty) {
  std::string text;
  for (int vcpu = 0; vcpu < domain.vcpus; ++vcpu) {
    if (vcpu > 0) text += '\n';
    text += fmt::format("{:<15} {}\n", "VCPU:", vcpu);
    text += fmt::format("{:<15} {}\n", "CPU:", "N/A");
    text += fmt::format("{:<15} {}\n", "State:", "N/A");
    text += fmt::format("{:<15} {}\n", "CPU time", "N/A");
    const auto pin = static_cast<std::size_t>(vcpu) < domain.vcpu_pins.size()
                         ? domain.vcpu_pins[static_cast<std::size_t>(vcpu)]
                         : CpuSet();
    text += affinity_line(pin, width, pretty);
  }
  return text + '\n';
}

}  // namespace

std::string render_vcpuinfo(const Vm& vm, const Snapshot& snapshot, bool pretty) {
  // virsh: vshPrint(ctl, "%-15s %d\n", _("VCPU:"), n) and so on (cmdVcpuinfo).
  const int width = snapshot.topology.affinity_width();
  if (vm.pid == 0 && vm.libvirt) return render_inactive_vcpuinfo(*vm.libvirt, width, pretty);
  std::string text;
  for (const auto* thread : vm.vcpus()) {
    const auto& facts = thread->facts;
    text += fmt::format("{:<15} {}\n", "VCPU:", thread->vcpu);
    text += fmt::format("{:<15} {}\n", "CPU:", facts.last_cpu);
    // libvirt reports the domain's state for every vCPU, not the thread's.
    text += fmt::format("{:<15} {}\n", "State:", "running");
    // libvirt: (utime + stime) ticks as ns (virProcessGetStatInfo), printed "%.1lfs", and the
    // line is left out when that is 0.
    // Same integer and double steps as libvirt and printf's rounding, so 0.25 s prints "0.2s".
    const std::uint64_t ns_per_tick =
        1000000000ULL / static_cast<std::uint64_t>(snapshot.clock_ticks_per_second);
    const std::uint64_t cpu_time_ns = facts.cpu_ticks().value_or(0) * ns_per_tick;
    if (cpu_time_ns != 0) {
      char seconds[64];
      std::snprintf(seconds, sizeof seconds, "%.1lfs", static_cast<double>(cpu_time_ns) / 1e9);
      text += fmt::format("{:<15} {}\n", "CPU time:", seconds);
    }
    text += affinity_line(facts.affinity, width, pretty);
    text += '\n';
  }
  return text;
}

}  // namespace vcpumap::views
