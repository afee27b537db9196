// `vcpumap delay [VM...] [-d DURATION] [--json]`: over a window, each vCPU's run delay and who it
// waited behind (VM, thread, host process or kernel thread), largest first.
#include <fmt/core.h>

#include <memory>

#include "cli/options.h"
#include "collect/delay.h"
#include "util/duration.h"
#include "views/delay_view.h"
#include "views/json.h"

namespace vcpumap::cli {
namespace {

struct DelayCliOptions {
  std::string duration = "5s";
  std::vector<std::string> vms;
  bool program_stats = false;
};

int run_delay(const GlobalOptions& global, const DelayCliOptions& cli) {
  auto duration = parse_duration(cli.duration);
  if (!duration) return report_error(duration.error());
  if (global.source == SourceChoice::procfs) {
    return report_error(make_error(
        ExitCode::failure,
        "delay needs BPF (tp_btf on the sched tracepoints) and --source procfs was given: use "
        "--source auto or bpf, as root or with CAP_BPF and CAP_PERFMON"));
  }
  const auto options = global.snapshot_options();
  std::vector<std::string> notes;
  auto source = open_thread_source(options, false, notes);
  if (!source) return report_error(source.error());
  auto report = measure_delay(options, **source, cli.vms, *duration, cli.program_stats);
  if (!report) return report_error(report.error());
  for (const auto& note : notes) fmt::print(stderr, "vcpumap: note: {}\n", note);
  if (global.json) {
    fmt::print("{}\n", views::dump_json(views::delay_json(*report)));
  } else {
    fmt::print("{}", views::render_delay_text(*report));
  }
  return 0;
}

}  // namespace

void add_delay_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto cli = std::make_shared<DelayCliOptions>();
  auto* delay = app.add_subcommand(
      "delay",
      "each vCPU's run delay over a window and who it waited behind: a VM's vCPU, emulator or "
      "I/O thread, a host process or a kernel thread (needs BPF)");
  delay->add_option("VM", cli->vms, "the VMs (name, UUID or PID; default: every VM)");
  delay->add_option("-d,--duration", cli->duration, "how long to watch (default 5s)")
      ->type_name("DURATION");
  delay->add_flag("--program-stats", cli->program_stats,
                  "also give what each BPF program cost per run over the window "
                  "(BPF_ENABLE_STATS, for benchmarks)");
  delay->callback([&global, &exit_code, cli] { exit_code = run_delay(global, *cli); });
}

}  // namespace vcpumap::cli
