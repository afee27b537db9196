#include "core/model.h"

#include <algorithm>

#include <fmt/format.h>

namespace vcpumap {

const Cpu* Topology::find(int cpu) const {
  auto it = std::find_if(cpus.begin(), cpus.end(), [cpu](const Cpu& c) { return c.cpu == cpu; });
  return it == cpus.end() ? nullptr : &*it;
}

int Topology::affinity_width() const {
  // libvirt sizes the string by the highest present CPU + 1 (virHostCPUCountLinux reads
  // devices/system/cpu/present), so offline CPUs count and show as '-'.
  return present.empty() ? online.end() : present.end();
}

std::string_view to_string(Hypervisor hypervisor) {
  switch (hypervisor) {
    case Hypervisor::qemu:
      return "qemu";
    case Hypervisor::firecracker:
      return "firecracker";
    case Hypervisor::cloud_hypervisor:
      return "cloud-hypervisor";
    case Hypervisor::crosvm:
      return "crosvm";
  }
  return "unknown";
}

std::string_view to_string(ThreadRole role) {
  switch (role) {
    case ThreadRole::vcpu:
      return "vcpu";
    case ThreadRole::iothread:
      return "iothread";
    case ThreadRole::emulator_main:
      return "emulator-main";
    case ThreadRole::emulator_monitor:
      return "emulator-monitor";
    case ThreadRole::emulator_other:
      return "emulator";
    case ThreadRole::vhost:
      return "vhost";
  }
  return "unknown";
}

std::string_view to_string(VcpuSource source) {
  switch (source) {
    case VcpuSource::thread_names:
      return "thread-names";
    case VcpuSource::libvirt_status:
      return "libvirt-status";
    case VcpuSource::qmp:
      return "qmp";
    case VcpuSource::unknown:
      return "unknown";
  }
  return "unknown";
}

bool is_emulator_role(ThreadRole role) {
  return role == ThreadRole::emulator_main || role == ThreadRole::emulator_monitor ||
         role == ThreadRole::emulator_other;
}

std::vector<const VmThread*> Vm::threads_with(ThreadRole role) const {
  std::vector<const VmThread*> result;
  for (const auto& thread : threads) {
    if (thread.role == role) result.push_back(&thread);
  }
  return result;
}

std::vector<const VmThread*> Vm::emulator_threads() const {
  std::vector<const VmThread*> result;
  for (const auto& thread : threads) {
    if (is_emulator_role(thread.role)) result.push_back(&thread);
  }
  return result;
}

CpuSet Vm::emulator_affinity() const {
  CpuSet all;
  for (const auto* thread : emulator_threads()) all = all | thread->facts.affinity;
  return all;
}

int ProxmoxConfig::vcpu_count() const {
  if (vcpus) return *vcpus;
  return cores.value_or(1) * sockets.value_or(1);
}

std::string Vm::display_name() const {
  return name.empty() ? fmt::format("pid {}", pid) : name;
}

}  // namespace vcpumap
