// Where a process's memory lies: the per-node page counts of /proc/PID/numa_maps.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>

#include "sources/procfs/procfs.h"

namespace vcpumap::procfs {

// KiB of memory on each NUMA node, by node number.
using NodeMemory = std::map<int, std::uint64_t>;

// Sums numa_maps's "N<node>=<pages>" over every mapping, weighted by the mapping's
// kernelpagesize_kB (so huge pages count for what they hold). Malformed fields are skipped.
NodeMemory parse_numa_maps(std::string_view text);

// A process's memory per node; nullopt when it exited or the kernel has no NUMA support.
std::optional<NodeMemory> read_node_memory(const Procfs& procfs, int pid);

}  // namespace vcpumap::procfs
