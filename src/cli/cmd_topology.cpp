// `vcpumap topology`: lscpu's view of the host plus the vCPUs that sit on each CPU.
#include <fmt/core.h>

#include "cli/options.h"
#include "views/json.h"
#include "views/topology_view.h"

namespace vcpumap::cli {
namespace {

int run_topology(const GlobalOptions& global) {
  // A whole snapshot, not just the topology: the VCPUS column needs every VM's threads.
  auto snapshot = take_snapshot(global.snapshot_options());
  if (!snapshot) return report_error(snapshot.error());
  print_notes(*snapshot);  // e.g. a VM whose vCPU threads can't be told apart: on stderr
  if (global.json) {
    fmt::print("{}\n", views::dump_json(views::topology_json(snapshot->topology, snapshot->vms)));
  } else {
    fmt::print("{}", views::render_topology_text(snapshot->topology, snapshot->vms));
  }
  return 0;
}

}  // namespace

void add_topology_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto* topology = app.add_subcommand(
      "topology",
      "packages, cores, SMT siblings, NUMA nodes, caches, online/offline/isolated CPUs and the "
      "hypervisor vendor, as lscpu shows them; then which vCPUs sit on each CPU");
  topology->callback([&global, &exit_code] { exit_code = run_topology(global); });
}

}  // namespace vcpumap::cli
