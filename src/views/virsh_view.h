// The text virsh prints, reproduced byte for byte (docs/virsh-formats.md has the rules and the
// libvirt source they come from).
#pragma once

#include <string>

#include "core/model.h"

namespace vcpumap::views {

// `virsh vcpuinfo [--pretty]`: one block per vCPU.
std::string render_vcpuinfo(const Vm& vm, const Snapshot& snapshot, bool pretty);
// `virsh vcpupin DOM`: the table of each vCPU's affinity.
std::string render_vcpupin(const Vm& vm);
// `virsh emulatorpin DOM`: the emulator threads' affinity.
std::string render_emulatorpin(const Vm& vm);
// `virsh iothreadinfo DOM`: each I/O thread's id and affinity.
std::string render_iothreadinfo(const Vm& vm);

}  // namespace vcpumap::views
