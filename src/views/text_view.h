// Human-readable text for `list` and `threads`.
#pragma once

#include <string>

#include "core/model.h"

namespace vcpumap::views {

// One line about the host: CPUs, packages, cores, threads per core, NUMA nodes, hypervisor.
std::string render_host_line(const Topology& topology);
// `vcpumap list`: the host line, then every VM with its vCPUs, emulator and I/O threads.
std::string render_list(const Snapshot& snapshot);
// `vcpumap threads VM`: every thread of the VM with its role and facts.
std::string render_threads(const Vm& vm, const Snapshot& snapshot);

// "12.34s" from nanoseconds, or "n/a" when the kernel gave no figure.
std::string format_seconds(const std::optional<std::uint64_t>& ns);

}  // namespace vcpumap::views
