// `vcpumap audit [VM...] [--watch SECS] [--fail-on LEVEL]`: checks that pinning took effect.
// Exit 0: nothing at or above --fail-on; 1: something is; 2: the audit could not run.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <memory>

#include <fmt/core.h>

#include "audit/audit.h"
#include "cli/options.h"
#include "util/duration.h"
#include "util/text.h"
#include "views/audit_view.h"
#include "views/json.h"

namespace vcpumap::cli {
namespace {

struct AuditArguments {
  std::vector<std::string> vms;
  std::string watch = "0";
  std::string fail_on = "error";
};

constexpr int kCouldNotRun = 2;

int could_not_run(const std::string& message) {
  fmt::print(stderr, "vcpumap: {}\n", message);
  return kCouldNotRun;
}

int run_audit(const GlobalOptions& global, const AuditArguments& arguments) {
  const auto threshold = audit::parse_severity(arguments.fail_on);
  if (!threshold) {
    return could_not_run(
        fmt::format("--fail-on '{}' is not a severity (write error, warning or info)",
                    printable(arguments.fail_on)));
  }
  const auto watch = parse_duration(arguments.watch, true);
  if (!watch) return could_not_run(fmt::format("--watch: {}", watch.error().message));
  audit::GatherOptions options;
  options.snapshot = global.snapshot_options();
  options.watch = std::chrono::duration_cast<std::chrono::milliseconds>(*watch);
  // A watch follows libvirt through the watcher top and serve use (its events, no relisting); a
  // single look lists libvirt once, in bulk.
  if (options.watch.count() > 0 && libvirt_asked(options.snapshot)) {
    auto watcher = std::make_shared<libvirt::Watcher>(options.snapshot.libvirt_uri,
                                                      options.snapshot.libvirt_timeout);
    watcher->wait_first_listing();
    options.watcher = std::move(watcher);
  }
  // What the watcher asked of libvirt, for the tests that check that a watch does not relist.
  const bool debug_calls = std::getenv("VCPUMAP_DEBUG_LIBVIRT_CALLS") != nullptr;
  auto debug = [&](const char* when) {
    if (!debug_calls || !options.watcher) return;
    const auto view = options.watcher->view();
    fmt::print(stderr, "vcpumap: debug: libvirt {}: {} calls, {} listings\n", when, view.calls,
               view.listings);
  };
  auto input = audit::look(options);
  if (!input) return could_not_run(input.error().message);
  debug("at the first look");
  // Resolve names before watching, so a typo fails at once.
  std::vector<int> pids;
  for (const auto& spec : arguments.vms) {
    auto vm = find_vm(input->snapshot, spec);
    if (!vm) return could_not_run(vm.error().message);
    if ((*vm)->pid <= 0) {
      return could_not_run(
          fmt::format("VM '{}' is not running: there is nothing to audit", printable(spec)));
    }
    pids.push_back((*vm)->pid);
  }
  audit::watch(*input, options);
  auto findings = audit::run_rules(*input);
  int audited = static_cast<int>(pids.size());
  if (arguments.vms.empty()) {
    for (const auto& vm : input->snapshot.vms) audited += vm.pid > 0 ? 1 : 0;
  } else {
    findings = audit::involving(findings, pids);
  }
  if (global.json) {
    fmt::print("{}\n", views::dump_json(views::audit_json(findings)));
  } else {
    fmt::print("{}", views::render_audit(findings, audited, input->facts.watched));
  }
  print_notes(input->snapshot);
  debug("at the end");
  return audit::any_at_or_above(findings, *threshold) ? 1 : 0;
}

}  // namespace

void add_audit_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto arguments = std::make_shared<AuditArguments>();
  auto* command = app.add_subcommand(
      "audit",
      "pinning checks: configured vs enforced vs actual, with the command that fixes each");
  command
      ->add_option("vm", arguments->vms, "only findings involving these VMs (name, UUID, id, PID)")
      ->type_name("VM");
  command
      ->add_option("--watch", arguments->watch,
                   "also watch threads for DURATION (5, 0.5, 30s, 5m; sampling every 100 ms) and "
                   "check where they ran")
      ->type_name("SECS");
  command
      ->add_option("--fail-on", arguments->fail_on,
                   "exit 1 when a finding is at or above this severity: error (default), "
                   "warning or info")
      ->type_name("LEVEL");
  command->callback(
      [&global, &exit_code, arguments] { exit_code = run_audit(global, *arguments); });
}

}  // namespace vcpumap::cli
