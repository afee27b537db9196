// vcpupin, emulatorpin, iothreadinfo, iothreadpin: show affinity as virsh does, and change it.
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/core.h>

#include "cli/options.h"
#include "pin/pin.h"
#include "util/text.h"
#include "views/json.h"
#include "views/pin_view.h"

namespace vcpumap::cli {
namespace {

enum class PinCommand { vcpupin, emulatorpin, iothreadpin };

// virsh's --live, --config and --current (--current excludes the other two; --live --config
// together change both definitions).
struct ScopeFlags {
  bool live = false;
  bool config = false;
  bool current = false;

  libvirt::Scope scope() const {
    if (live && config) return libvirt::Scope::live_and_config;
    if (live) return libvirt::Scope::live;
    if (config) return libvirt::Scope::config;
    return libvirt::Scope::current;
  }
};

// The command line of one pin command, shared with its callback.
struct PinArguments {
  std::string vm;
  std::string target;   // VCPU or I/O thread ID, may be empty
  std::string cpulist;  // empty: show
  ScopeFlags flags;
};

void add_scope_flags(CLI::App* command, ScopeFlags& flags) {
  auto* live = command->add_flag("--live", flags.live, "the running domain");
  auto* config = command->add_flag("--config", flags.config,
                                   "the persistent definition (next boot; libvirt domains only)");
  auto* current = command->add_flag(
      "--current", flags.current, "the running domain, or the definition when shut off (default)");
  current->excludes(live);
  current->excludes(config);
}

// A snapshot and the VM the user named in it.
struct Loaded {
  Snapshot snapshot;
  const Vm* vm = nullptr;
};

Result<std::unique_ptr<Loaded>> load(const GlobalOptions& global, const std::string& spec) {
  auto snapshot = take_snapshot(global.snapshot_options());
  if (!snapshot) return snapshot.error();
  auto loaded = std::make_unique<Loaded>();
  loaded->snapshot = std::move(*snapshot);
  auto vm = find_vm(loaded->snapshot, spec);
  if (!vm) return vm.error();
  loaded->vm = *vm;
  return loaded;
}

Result<int> parse_vcpu(const std::string& text) {
  const auto number = parse_i64(text);
  if (!number || *number < 0 || *number > CpuSet::kMaxCpu) {
    return make_error(ExitCode::bad_input, "'{}' is not a vCPU number (write e.g. 0)",
                      printable(text));
  }
  return static_cast<int>(*number);
}

// What the show forms can print for this scope: a libvirt domain's live definition when it
// runs, its persistent one when it is shut off; a VM without libvirt has only live threads.
Status check_show_scope(const Vm& vm, libvirt::Scope scope) {
  const bool live = scope == libvirt::Scope::live || scope == libvirt::Scope::live_and_config;
  const bool config = scope == libvirt::Scope::config || scope == libvirt::Scope::live_and_config;
  if (live && config) {
    return make_error(ExitCode::bad_input, "showing takes --live or --config, not both");
  }
  if (!vm.libvirt) return pin::check_scope(vm, scope);
  if (live && !vm.libvirt->active) {
    // virsh: "cannot get vcpupin for offline domain".
    return make_error(ExitCode::failure,
                      "VM '{}' is not running: it has no live pinning; drop --live to see its "
                      "definition",
                      printable(vm.display_name()));
  }
  if (config && vm.libvirt->active) {
    return make_error(ExitCode::failure,
                      "showing the persistent definition of a running domain is not supported "
                      "yet; drop --config, or ask virsh with --config for VM '{}'",
                      printable(vm.display_name()));
  }
  return Ok{};
}

// Prints what the show form prints: virsh's text, or JSON.
void print_pinning(const GlobalOptions& global, PinCommand command, const Vm& vm,
                   const Topology& topology, std::optional<int> vcpu) {
  switch (command) {
    case PinCommand::vcpupin: {
      auto rows = views::vcpupin_rows(vm, topology);
      if (vcpu) std::erase_if(rows, [&](const views::PinRow& row) { return row.vcpu != *vcpu; });
      if (global.json) {
        fmt::print("{}\n", views::dump_json({{"vcpus", views::pin_rows_json(rows, false)}}));
      } else {
        fmt::print("{}", views::render_vcpupin_rows(rows));
      }
      return;
    }
    case PinCommand::emulatorpin: {
      const auto cpus = views::emulatorpin_cpus(vm, topology);
      if (global.json) {
        auto threads = nlohmann::json::array();
        for (const auto* thread : vm.emulator_threads()) {
          threads.push_back(views::thread_json(*thread));
        }
        fmt::print("{}\n", views::dump_json(
                               {{"emulator", {{"affinity", cpus.cpus()}, {"threads", threads}}}}));
      } else {
        fmt::print("{}", views::render_emulatorpin_cpus(cpus));
      }
      return;
    }
    case PinCommand::iothreadpin: {
      const auto rows = views::iothreadinfo_rows(vm);
      if (global.json) {
        fmt::print("{}\n", views::dump_json({{"iothreads", views::pin_rows_json(rows, true)}}));
      } else {
        fmt::print("{}", views::render_iothreadinfo_rows(rows));
      }
      return;
    }
  }
}

int run_show(const GlobalOptions& global, PinCommand command, const PinArguments& arguments) {
  auto loaded = load(global, arguments.vm);
  if (!loaded) return report_error(loaded.error());
  const auto& snapshot = (*loaded)->snapshot;
  const Vm& vm = *(*loaded)->vm;
  // Notes belong on stderr so that text stays exactly what virsh would print.
  for (const auto& note : snapshot.notes) fmt::print(stderr, "vcpumap: note: {}\n", note);
  print_notes(vm);
  if (auto scoped = check_show_scope(vm, arguments.flags.scope()); !scoped) {
    return report_error(scoped.error());
  }
  std::optional<int> vcpu;
  if (!arguments.target.empty()) {
    auto number = parse_vcpu(arguments.target);
    if (!number) return report_error(number.error());
    if (auto found = pin::check_target(vm, pin::PinTarget::of_vcpu(*number)); !found) {
      return report_error(found.error());
    }
    vcpu = *number;
  }
  print_pinning(global, command, vm, snapshot.topology, vcpu);
  return 0;
}

// Reads the change back from a fresh snapshot and prints it as the show form would.
int print_after_change(const GlobalOptions& global, PinCommand command,
                       const PinArguments& arguments, const pin::PinPlan& plan,
                       const pin::PinOutcome& outcome) {
  auto loaded = load(global, arguments.vm);
  if (!loaded) {
    fmt::print(stderr, "vcpumap: the change was made, but reading it back failed\n");
    return report_error(loaded.error());
  }
  const Vm& vm = *(*loaded)->vm;
  // The kernel narrows a mask to what the thread's cpuset cgroup allows; say so rather than
  // let the table look like a different change.
  for (const int tid : outcome.tids) {
    for (const auto& thread : vm.threads) {
      if (thread.tid == tid && !(thread.facts.affinity == plan.cpus)) {
        fmt::print(stderr,
                   "vcpumap: note: thread {} runs on CPUs {}, not {}: the kernel narrowed it\n",
                   tid, thread.facts.affinity.to_list(), plan.cpus.to_list());
      }
    }
  }
  if (outcome.through_libvirt && arguments.flags.scope() == libvirt::Scope::config && vm.libvirt &&
      vm.libvirt->active) {
    fmt::print(stderr,
               "vcpumap: note: --config changed the definition used from the next boot; below "
               "is the running domain's pinning\n");
  }
  std::optional<int> vcpu;
  if (plan.target.role == pin::PinRole::vcpu) vcpu = plan.target.vcpu;
  print_pinning(global, command, vm, (*loaded)->snapshot.topology, vcpu);
  return 0;
}

int run_change(const GlobalOptions& global, PinCommand command, const PinArguments& arguments) {
  auto loaded = load(global, arguments.vm);
  if (!loaded) return report_error(loaded.error());
  const auto& snapshot = (*loaded)->snapshot;
  const Vm& vm = *(*loaded)->vm;
  std::error_code ignored;
  if (!std::filesystem::equivalent(global.root, "/", ignored)) {
    // Thread ids under another root mean nothing to this kernel.
    return report_error(make_error(ExitCode::bad_input,
                                   "pinning changes this machine's threads; drop --root '{}'",
                                   printable(global.root)));
  }
  pin::PinTarget target = pin::PinTarget::of_emulator();
  if (command == PinCommand::vcpupin) {
    auto number = parse_vcpu(arguments.target);
    if (!number) return report_error(number.error());
    target = pin::PinTarget::of_vcpu(*number);
  } else if (command == PinCommand::iothreadpin) {
    target = pin::PinTarget::of_iothread(arguments.target);
  }
  auto plan = pin::plan_pin(vm, snapshot.topology, target, arguments.cpulist);
  if (!plan) return report_error(plan.error());
  const auto scope = arguments.flags.scope();
  if (auto scoped = pin::check_scope(vm, scope); !scoped) return report_error(scoped.error());
  // Notes only once the input is known good: a bad input gets exactly one line on stderr.
  for (const auto& note : snapshot.notes) fmt::print(stderr, "vcpumap: note: {}\n", note);
  print_notes(vm);
  std::unique_ptr<libvirt::Connection> connection;
  if (vm.libvirt) {
    auto opened = libvirt::Connection::open(global.connect_uri, global.libvirt_timeout());
    if (!opened) return report_error(opened.error());
    connection = std::move(*opened);
  }
  auto outcome = pin::apply_pin(vm, *plan, scope, connection.get());
  if (!outcome) return report_error(outcome.error());
  return print_after_change(global, command, arguments, *plan, *outcome);
}

// Adds one pin command: VM, then `target_name` when given, then CPULIST.
void add_pin_command(CLI::App& app, const GlobalOptions& global, int& exit_code, PinCommand command,
                     const std::string& name, const std::string& description,
                     const std::string& target_name, bool show_only) {
  auto arguments = std::make_shared<PinArguments>();
  auto* sub = app.add_subcommand(name, description);
  sub->add_option("VM", arguments->vm,
                  "the VM: name, UUID, NAMESPACE/NAME, libvirt id, Proxmox VMID or PID")
      ->required();
  if (!target_name.empty()) {
    auto* target =
        sub->add_option(target_name, arguments->target,
                        command == PinCommand::vcpupin ? "the vCPU number" : "the I/O thread's ID");
    if (command == PinCommand::iothreadpin) target->required();
  }
  if (!show_only) {
    auto* cpulist = sub->add_option("CPULIST", arguments->cpulist,
                                    "host CPUs to allow, virsh's syntax: 0-3,^2,8; r for all");
    if (command == PinCommand::iothreadpin) cpulist->required();
  }
  add_scope_flags(sub, arguments->flags);
  sub->callback([&global, &exit_code, arguments, command, show_only, sub] {
    const bool change = !show_only && sub->count("CPULIST") > 0;
    exit_code =
        change ? run_change(global, command, *arguments) : run_show(global, command, *arguments);
  });
}

}  // namespace

void add_pin_commands(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  add_pin_command(app, global, exit_code, PinCommand::vcpupin, "vcpupin",
                  "show or change each vCPU's affinity (virsh's table)", "VCPU", false);
  add_pin_command(app, global, exit_code, PinCommand::emulatorpin, "emulatorpin",
                  "show or change the emulator threads' affinity (virsh's table)", "", false);
  add_pin_command(app, global, exit_code, PinCommand::iothreadpin, "iothreadinfo",
                  "show each I/O thread's affinity (virsh's table)", "", true);
  add_pin_command(app, global, exit_code, PinCommand::iothreadpin, "iothreadpin",
                  "change one I/O thread's affinity", "ID", false);
}

}  // namespace vcpumap::cli
