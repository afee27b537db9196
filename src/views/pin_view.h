// What vcpupin, emulatorpin and iothreadinfo show, as rows: a libvirt domain's configured pinning
// (as virsh shows it, docs/virsh-formats.md §2-4) or, for other VMs, the threads' affinity.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace vcpumap::views {

// One row of a pin table.
struct PinRow {
  int vcpu = -1;         // vcpupin rows: the vCPU number
  std::string iothread;  // iothreadinfo rows: QEMU's object id ("iothread1", "io1")
  std::string label;     // the first column as virsh prints it ("0", "1", "io1")
  int tid = 0;           // the thread behind the row, 0 when there is none (inactive domain)
  CpuSet cpus;
};

// One row per vCPU: libvirt's configured pinning (unpinned: every online CPU, as libvirt shows
// it) for a libvirt domain, else each vCPU thread's affinity.
std::vector<PinRow> vcpupin_rows(const Vm& vm, const Topology& topology);
// The emulator pinning: libvirt's configured set (else every online CPU), or the union of the
// emulator threads' affinities.
CpuSet emulatorpin_cpus(const Vm& vm, const Topology& topology);
// One row per I/O thread: in libvirt's order with its affinity, or each QEMU I/O thread's.
std::vector<PinRow> iothreadinfo_rows(const Vm& vm);

// `virsh vcpupin DOM [VCPU]`: the VCPU / CPU Affinity table and virsh's closing empty line.
std::string render_vcpupin_rows(const std::vector<PinRow>& rows);
// `virsh emulatorpin DOM`: the fixed header, 34 dashes and "       *: LIST".
std::string render_emulatorpin_cpus(const CpuSet& cpus);
// `virsh iothreadinfo DOM`: the IOThread ID / CPU Affinity table, or virsh's one-line "none".
std::string render_iothreadinfo_rows(const std::vector<PinRow>& rows);

// [{"vcpu": N, "tid": T|null, "affinity": [...]}] (key "id" with QEMU's object id for I/O
// threads), the same keys as `vcpupin --json` has always had.
nlohmann::json pin_rows_json(const std::vector<PinRow>& rows, bool iothread);

}  // namespace vcpumap::views
