#include "cli/vm_command.h"

#include <memory>

#include <fmt/core.h>

namespace vcpumap::cli {

int with_vm(const GlobalOptions& global, const std::string& spec, const VmPrinter& print,
            bool tick_times) {
  const auto options = global.snapshot_options();
  std::vector<std::string> notes;
  auto source = open_thread_source(options, false, notes);
  if (!source) return report_error(source.error());
  auto snapshot = take_snapshot(options, **source);
  if (!snapshot) return report_error(snapshot.error());
  snapshot->notes.insert(snapshot->notes.begin(), notes.begin(), notes.end());
  auto vm = find_vm(*snapshot, spec);
  if (!vm) return report_error(vm.error());
  if (tick_times) {
    // Only this VM's: stat is the dearest file, and the source may not have read it.
    auto& chosen = snapshot->vms[static_cast<std::size_t>(*vm - snapshot->vms.data())];
    (*source)->read_tick_times(chosen.threads, chosen.pid);
  }
  // Notes belong on stderr so that text stays exactly what virsh would print.
  for (const auto& note : snapshot->notes) fmt::print(stderr, "vcpumap: note: {}\n", note);
  print_notes(**vm);
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

CLI::App* add_vm_command(CLI::App& app, const GlobalOptions& global, int& exit_code,
                         const std::string& name, const std::string& description,
                         const VmPrinter& print, bool tick_times) {
  auto spec = std::make_shared<std::string>();
  auto* command = app.add_subcommand(name, description);
  command
      ->add_option("VM", *spec,
                   "the VM: name, UUID, NAMESPACE/NAME, libvirt id, Proxmox VMID or PID")
      ->required();
  command->callback([&global, &exit_code, spec, print, tick_times] {
    exit_code = with_vm(global, *spec, print, tick_times);
  });
  return command;
}

}  // namespace vcpumap::cli
