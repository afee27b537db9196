#include "views/pin_view.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/identify.h"
#include "views/table.h"

namespace vcpumap::views {
namespace {

// libvirt shows an unpinned vCPU or emulator as every online host CPU
// (virDomainDefGetVcpuPinInfoHelper, qemuDomainEvaluateCPUMask: virHostCPUGetAvailableCPUsBitmap).
CpuSet unpinned(const Topology& topology) {
  return topology.online.empty() ? topology.present : topology.online;
}

const VmThread* find_thread(const Vm& vm, ThreadRole role, int vcpu, std::string_view iothread) {
  for (const auto* thread : vm.threads_with(role)) {
    if (role == ThreadRole::vcpu && thread->vcpu == vcpu) return thread;
    if (role == ThreadRole::iothread && thread->iothread == iothread) return thread;
  }
  return nullptr;
}

}  // namespace

std::vector<PinRow> vcpupin_rows(const Vm& vm, const Topology& topology) {
  std::vector<PinRow> rows;
  if (vm.libvirt) {
    // virsh lists every vCPU up to the maximum, from the definition, not from the threads.
    const auto& domain = *vm.libvirt;
    const auto count =
        std::max(static_cast<std::size_t>(std::max(domain.vcpus, 0)), domain.vcpu_pins.size());
    for (std::size_t i = 0; i < count; ++i) {
      const int vcpu = static_cast<int>(i);
      const auto* thread = find_thread(vm, ThreadRole::vcpu, vcpu, {});
      CpuSet cpus = i < domain.vcpu_pins.size() ? domain.vcpu_pins[i] : CpuSet{};
      if (cpus.empty()) cpus = unpinned(topology);
      rows.push_back({vcpu, {}, fmt::to_string(vcpu), thread ? thread->tid : 0, cpus});
    }
    return rows;
  }
  for (const auto* thread : vm.vcpus()) {
    rows.push_back(
        {thread->vcpu, {}, fmt::to_string(thread->vcpu), thread->tid, thread->facts.affinity});
  }
  return rows;
}

CpuSet emulatorpin_cpus(const Vm& vm, const Topology& topology) {
  if (vm.libvirt) {
    return vm.libvirt->emulator_pin.empty() ? unpinned(topology) : vm.libvirt->emulator_pin;
  }
  return vm.emulator_affinity();
}

std::vector<PinRow> iothreadinfo_rows(const Vm& vm) {
  std::vector<PinRow> rows;
  if (vm.libvirt) {
    // virDomainGetIOThreadInfo's order and affinity, as virsh prints them.
    for (const auto& [id, cpus] : vm.libvirt->iothreads) {
      const auto object_id = fmt::format("iothread{}", id);
      const auto* thread = find_thread(vm, ThreadRole::iothread, -1, object_id);
      rows.push_back({-1, object_id, fmt::to_string(id), thread ? thread->tid : 0, cpus});
    }
    return rows;
  }
  for (const auto* thread : vm.threads_with(ThreadRole::iothread)) {
    // libvirt's I/O thread objects are "iothread<N>" and virsh shows N.
    const auto number = parse_indexed_name(thread->iothread, "iothread");
    rows.push_back({-1, thread->iothread, number ? fmt::to_string(*number) : thread->iothread,
                    thread->tid, thread->facts.affinity});
  }
  return rows;
}

std::string render_vcpupin_rows(const std::vector<PinRow>& rows) {
  Table table({"VCPU", "CPU Affinity"});
  for (const auto& row : rows) table.add_row({row.label, row.cpus.to_list()});
  // virsh ends every command with an empty line (vshCommandRun).
  return table.render_virsh() + '\n';
}

std::string render_emulatorpin_cpus(const CpuSet& cpus) {
  // cmdEmulatorPin: vshPrintExtra("       *: "), 7 spaces, then the list.
  return fmt::format("emulator: CPU Affinity\n{}\n       *: {}\n\n", std::string(34, '-'),
                     cpus.to_list());
}

std::string render_iothreadinfo_rows(const std::vector<PinRow>& rows) {
  // cmdIOThreadInfo prints this without a newline; virsh's end-of-command newline ends it.
  if (rows.empty()) return "No IOThreads found for the domain\n";
  Table table({"IOThread ID", "CPU Affinity"});
  for (const auto& row : rows) table.add_row({row.label, row.cpus.to_list()});
  return table.render_virsh() + '\n';
}

nlohmann::json pin_rows_json(const std::vector<PinRow>& rows, bool iothread) {
  auto out = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json item;
    if (iothread) {
      item["id"] = row.iothread;
    } else {
      item["vcpu"] = row.vcpu;
    }
    item["tid"] = row.tid != 0 ? nlohmann::json(row.tid) : nlohmann::json(nullptr);
    item["affinity"] = row.cpus.cpus();
    out.push_back(item);
  }
  return out;
}

}  // namespace vcpumap::views
