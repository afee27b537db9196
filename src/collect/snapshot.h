// One look at the host: topology plus every VM with its threads' facts.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap {

struct SnapshotOptions {
  std::filesystem::path root = "/";       // where /proc and /sys are read
  std::vector<std::string> qmp_sockets;   // QMP monitors to ask for vCPU thread ids
  bool with_topology = true;
};

// Reads topology and every VM on the host.
Result<Snapshot> take_snapshot(const SnapshotOptions& options);

// Finds the VM a user named: by name, UUID, or PID. Error (exit 2) names the input when unknown.
Result<const Vm*> find_vm(const Snapshot& snapshot, std::string_view spec);

}  // namespace vcpumap
