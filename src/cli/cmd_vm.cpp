// Subcommands about one VM: vcpuinfo, vcpupin, emulatorpin, iothreadinfo, threads.
#include <fmt/core.h>

#include <functional>
#include <memory>

#include "cli/options.h"
#include "views/json.h"
#include "views/text_view.h"
#include "views/virsh_view.h"

namespace vcpumap::cli {
namespace {

using VmPrinter = std::function<void(const Vm&, const Snapshot&)>;

// Takes a snapshot, finds the VM the user named and prints it with `print`.
int with_vm(const GlobalOptions& global, const std::string& spec, const VmPrinter& print) {
  auto snapshot = take_snapshot(global.snapshot_options());
  if (!snapshot) return report_error(snapshot.error());
  auto vm = find_vm(*snapshot, spec);
  if (!vm) return report_error(vm.error());
  print(**vm, *snapshot);
  return 0;
}

nlohmann::json affinity_rows(const std::vector<const VmThread*>& threads, const char* key,
                             bool iothread) {
  auto rows = nlohmann::json::array();
  for (const auto* thread : threads) {
    nlohmann::json row;
    if (iothread) {
      row[key] = thread->iothread;
    } else {
      row[key] = thread->vcpu;
    }
    row["tid"] = thread->tid;
    row["affinity"] = thread->facts.affinity.cpus();
    rows.push_back(row);
  }
  return rows;
}

// Adds a subcommand taking one VM argument that prints with `print`.
CLI::App* add_vm_command(CLI::App& app, const GlobalOptions& global, int& exit_code,
                         const std::string& name, const std::string& description,
                         const VmPrinter& print) {
  auto spec = std::make_shared<std::string>();
  auto* command = app.add_subcommand(name, description);
  command->add_option("VM", *spec, "the VM: name, UUID or PID")->required();
  command->callback([&global, &exit_code, spec, print] {
    exit_code = with_vm(global, *spec, print);
  });
  return command;
}

}  // namespace

void add_vcpuinfo_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto pretty = std::make_shared<bool>(false);
  auto* command = add_vm_command(
      app, global, exit_code, "vcpuinfo", "the text 'virsh vcpuinfo' prints, for any VM",
      [&global, pretty](const Vm& vm, const Snapshot& snapshot) {
        if (global.json) {
          auto rows = nlohmann::json::array();
          for (const auto* thread : vm.vcpus()) rows.push_back(views::thread_json(*thread));
          fmt::print("{}\n", views::dump_json({{"vcpus", rows}}));
        } else {
          fmt::print("{}", views::render_vcpuinfo(vm, snapshot, *pretty));
        }
      });
  command->add_flag("--pretty", *pretty, "affinity as a CPU list '0-1 (out of 2)'");
}

void add_pin_commands(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  add_vm_command(app, global, exit_code, "vcpupin", "show each vCPU's affinity (virsh's table)",
                 [&global](const Vm& vm, const Snapshot&) {
                   if (global.json) {
                     fmt::print("{}\n", views::dump_json(
                                            {{"vcpus", affinity_rows(vm.vcpus(), "vcpu", false)}}));
                   } else {
                     fmt::print("{}", views::render_vcpupin(vm));
                   }
                 });
  add_vm_command(app, global, exit_code, "emulatorpin",
                 "show the emulator threads' affinity (virsh's table)",
                 [&global](const Vm& vm, const Snapshot&) {
                   if (global.json) {
                     auto threads = nlohmann::json::array();
                     for (const auto* thread : vm.emulator_threads()) {
                       threads.push_back(views::thread_json(*thread));
                     }
                     fmt::print("{}\n", views::dump_json(
                                            {{"emulator",
                                              {{"affinity", vm.emulator_affinity().cpus()},
                                               {"threads", threads}}}}));
                   } else {
                     fmt::print("{}", views::render_emulatorpin(vm));
                   }
                 });
  add_vm_command(
      app, global, exit_code, "iothreadinfo", "show each I/O thread's affinity (virsh's table)",
      [&global](const Vm& vm, const Snapshot&) {
        if (global.json) {
          fmt::print("{}\n", views::dump_json({{"iothreads",
                                                affinity_rows(vm.threads_with(ThreadRole::iothread),
                                                              "id", true)}}));
        } else {
          fmt::print("{}", views::render_iothreadinfo(vm));
        }
      });
}

void add_threads_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  add_vm_command(app, global, exit_code, "threads",
                 "every thread of the VM: role, last CPU, state, affinity, CPU time",
                 [&global](const Vm& vm, const Snapshot& snapshot) {
                   if (global.json) {
                     fmt::print("{}\n", views::dump_json(views::threads_json(vm)));
                   } else {
                     fmt::print("{}", views::render_threads(vm, snapshot));
                   }
                 });
}

}  // namespace vcpumap::cli
