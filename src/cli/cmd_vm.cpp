// Subcommands that print one VM: vcpuinfo and threads.
#include <fmt/core.h>

#include <memory>

#include "cli/options.h"
#include "cli/vm_command.h"
#include "views/json.h"
#include "views/text_view.h"
#include "views/virsh_view.h"

namespace vcpumap::cli {

void add_vcpuinfo_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto pretty = std::make_shared<bool>(false);
  // virsh's "CPU time" is stat's utime+stime ticks, which the kernel scales when stat is read.
  auto* command = add_vm_command(
      app, global, exit_code, "vcpuinfo", "the text 'virsh vcpuinfo' prints, for any VM",
      [&global, pretty](const Vm& vm, const Snapshot& snapshot) {
        if (global.json) {
          auto rows = nlohmann::json::array();
          for (const auto* thread : vm.vcpus()) rows.push_back(views::thread_json(*thread));
          fmt::print("{}\n", views::dump_json({{"vcpus", rows}, {"source", snapshot.source}}));
        } else {
          fmt::print("{}", views::render_vcpuinfo(vm, snapshot, *pretty));
        }
      },
      true);
  command->add_flag("--pretty", *pretty, "affinity as a CPU list '0-1 (out of 2)'");
}

void add_threads_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  add_vm_command(app, global, exit_code, "threads",
                 "every thread of the VM: role, last CPU, state, affinity, CPU time",
                 [&global](const Vm& vm, const Snapshot& snapshot) {
                   if (global.json) {
                     fmt::print("{}\n", views::dump_json(views::threads_json(vm, snapshot)));
                   } else {
                     fmt::print("{}", views::render_threads(vm, snapshot));
                   }
                 });
}

}  // namespace vcpumap::cli
