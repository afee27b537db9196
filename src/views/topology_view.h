// `vcpumap topology`: the host's CPUs as lscpu shows them, and which vCPUs sit on each CPU.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace vcpumap::views {

// lscpu's summary (CPUs, online/offline/isolated lists, model, threads/cores/sockets,
// hypervisor vendor, caches, NUMA nodes), then one row per CPU with its node, package, core,
// SMT siblings and the vCPUs that last ran there or are pinned there alone.
std::string render_topology_text(const Topology& topology, const std::vector<Vm>& vms);

// The `topology --json` document: {"cpus": [...], "packages", "cores", "threads_per_core",
// "numa_nodes", "hypervisor_vendor", ...}; unknown core/package/node numbers are null.
nlohmann::json topology_json(const Topology& topology, const std::vector<Vm>& vms);

// A byte count as lscpu prints cache sizes: "64 KiB", "1 MiB", "11.5 MiB".
std::string human_size(std::uint64_t bytes);

}  // namespace vcpumap::views
