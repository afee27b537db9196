// Proxmox VE's guest configuration, ROOT/etc/pve/qemu-server/VMID.conf: what it says about the
// VM's CPUs (qm.conf(5)). Proxmox runs QEMU without libvirt, so this file is the configured side
// an audit compares with what the kernel enforces.
#pragma once

#include <filesystem>
#include <string_view>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap::proxmox {

// Parses a qemu-server config's text: the current configuration, before its first [section]
// (snapshots, pending changes). An error names the line and the value that is wrong.
Result<ProxmoxConfig> parse_qemu_server_config(std::string_view text);

// Reads and parses ROOT/etc/pve/qemu-server/VMID.conf; an error when absent or malformed.
Result<ProxmoxConfig> read_qemu_server_config(const std::filesystem::path& root, int vmid);

}  // namespace vcpumap::proxmox
