// `vcpumap __complete-vms`: the VMs' names and PIDs, one a line, for the shell completions
// (contrib/completion/). Hidden from --help: it is for scripts, not people.
#include <fmt/core.h>

#include <set>
#include <string>

#include "cli/options.h"

namespace vcpumap::cli {
namespace {

// A name a shell completion can offer as one word of one line: no control characters.
bool completable(const std::string& name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

int run_complete_vms(const GlobalOptions& global) {
  auto snapshot = take_snapshot(global.snapshot_options());
  // Completion must stay quiet: no VMs offered is the answer when the host can't be read.
  if (!snapshot) return 1;
  std::set<std::string> words;  // sorted, and a name shared by two VMs offered once
  for (const auto& vm : snapshot->vms) {
    if (completable(vm.name)) words.insert(vm.name);
    if (vm.pid > 0) words.insert(std::to_string(vm.pid));
  }
  for (const auto& word : words) fmt::print("{}\n", word);
  return 0;
}

}  // namespace

void add_complete_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto* complete = app.add_subcommand("__complete-vms", "VM names and PIDs for shell completion");
  complete->group("");  // hidden from --help, so from the man pages' and completions' checks too
  complete->callback([&global, &exit_code] { exit_code = run_complete_vms(global); });
}

}  // namespace vcpumap::cli
