// The text virsh prints, reproduced byte for byte (docs/virsh-formats.md has the rules and the
// libvirt source they come from).
#pragma once

#include <string>

#include "core/model.h"

namespace vcpumap::views {

// `virsh vcpuinfo [--pretty]`: one block per vCPU.
std::string render_vcpuinfo(const Vm& vm, const Snapshot& snapshot, bool pretty);
// vcpupin, emulatorpin and iothreadinfo are in pin_view.h: they show libvirt's definition.

}  // namespace vcpumap::views
