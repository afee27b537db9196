// What this host offers the sources, probed once (bpftrace's BPFfeature is the model): kernel,
// BTF, privileges, BPF walkers, tracefs, perf, schedstat and SCHED_DEBUG files. `vcpumap doctor`
// prints it; source choice acts on the same probes.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vcpumap {

// One fact about the host: a name, whether it holds, and a line saying what was seen.
struct FeatureCheck {
  std::string name;
  bool ok = false;
  std::string detail;
};

// A source of facts, whether it can be used here, and why (or why not, and what would enable it).
struct SourceProbe {
  std::string name;
  bool available = false;
  std::string why;
};

struct HostFeatures {
  std::string kernel;  // the kernel release, empty when unknown
  std::vector<FeatureCheck> checks;
  std::vector<SourceProbe> thread_sources;  // bpf (open-coded, iter/task), procfs
  std::vector<SourceProbe> event_sources;   // bpf ring, perf tracepoints (record --exact's order)
  SourceProbe delay_source;                 // the in-kernel delay split (vcpumap delay)
};

// Probes the host whose /proc and /sys are under `root`. BPF is probed only on this machine's own
// root (a fixture tree's kernel is not the one that would run the programs).
HostFeatures probe_host(const std::filesystem::path& root);

}  // namespace vcpumap
