// The host's CPU topology, read from ROOT/sys and ROOT/proc (hwloc does the reading).
#pragma once

#include <filesystem>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap {

// Packages, cores, SMT siblings, NUMA nodes, caches, online/offline/isolated CPUs and the
// hypervisor vendor of the host whose file-system root is `root` ("/" for this machine).
Result<Topology> read_topology(const std::filesystem::path& root);

}  // namespace vcpumap
