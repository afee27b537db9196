// JSON documents for every command. Key names here are a public interface (see docs/json.md).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/model.h"

namespace vcpumap::views {

// Serialises for output. Names hold arbitrary bytes: invalid UTF-8 becomes U+FFFD so the
// document stays valid JSON.
std::string dump_json(const nlohmann::json& document, bool pretty = false);

// The host summary: CPUs, packages, cores, threads per core, NUMA nodes, hypervisor vendor.
nlohmann::json host_json(const Topology& topology);
// One thread's facts; unavailable kernel figures are null.
nlohmann::json thread_json(const VmThread& thread);
// One VM: identity, vCPUs, emulator threads and I/O threads.
nlohmann::json vm_json(const Vm& vm);
// The `list --json` document: {"host": ..., "vms": [...], "notes": [...], "source": "bpf"}.
nlohmann::json snapshot_json(const Snapshot& snapshot);
// The same document as dump_json(snapshot_json(snapshot)), written a VM at a time to `sink`:
// the whole tree of 20,000 threads would take about 60 MiB, one VM's a few KiB.
void write_snapshot_json(const Snapshot& snapshot,
                         const std::function<void(std::string_view)>& sink);
// The `threads VM --json` document: {"vm": ..., "threads": [...], "source": ...}.
nlohmann::json threads_json(const Vm& vm, const Snapshot& snapshot);

}  // namespace vcpumap::views
