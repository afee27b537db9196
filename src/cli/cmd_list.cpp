// `vcpumap list` (also `vcpumap` alone): the host, then every VM and where its vCPUs run.
#include <fmt/core.h>

#include "cli/options.h"
#include "views/json.h"
#include "views/text_view.h"

namespace vcpumap::cli {

int run_list(const GlobalOptions& global) {
  auto snapshot = take_snapshot(global.snapshot_options());
  if (!snapshot) return report_error(snapshot.error());
  if (global.json) {
    views::write_snapshot_json(*snapshot, [](std::string_view text) { fmt::print("{}", text); });
    fmt::print("\n");
    // The document holds every note; what the host as a whole lacks (libvirt did not answer) is
    // said on stderr too, where a script's log catches it.
    for (const auto& note : snapshot->notes) fmt::print(stderr, "vcpumap: note: {}\n", note);
  } else {
    fmt::print("{}", views::render_list(*snapshot));
    print_notes(*snapshot);
  }
  return 0;
}

void add_list_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto* list = app.add_subcommand("list", "host summary, then every VM: where each vCPU runs");
  list->callback([&global, &exit_code] { exit_code = run_list(global); });
}

}  // namespace vcpumap::cli
