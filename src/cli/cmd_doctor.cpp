// `vcpumap doctor`: what this host offers (kernel, BTF, BPF, tracefs, schedstat, libvirt) and
// which source each command will use.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "sources/host_features.h"
#include "sources/libvirt/libvirt.h"
#include "sources/procfs/procfs.h"
#include "views/json.h"

namespace vcpumap::cli {
namespace {

// The thread source --source picks among the probes: the first available in auto's order.
std::string chosen_source(const HostFeatures& host, SourceChoice choice) {
  for (const auto& source : host.thread_sources) {
    const bool is_bpf = source.name.starts_with("bpf");
    if (choice == SourceChoice::procfs && is_bpf) continue;
    if (choice == SourceChoice::bpf && !is_bpf) continue;
    if (source.available) return source.name;
  }
  return choice == SourceChoice::bpf ? "none (--source bpf cannot run here)" : "procfs";
}

int run_doctor(const GlobalOptions& global) {
  const auto host = probe_host(global.root);
  const auto chosen = chosen_source(host, global.source);

  SourceProbe libvirt{"libvirt", false, "not asked (--no-libvirt)"};
  if (!global.no_libvirt && procfs::is_own_root(global.root)) {
    auto connection = libvirt::Connection::open(global.connect_uri);
    libvirt.available = connection.ok();
    libvirt.why = connection ? fmt::format("connected to {}", (*connection)->uri())
                             : connection.error().message;
  } else if (!global.no_libvirt) {
    libvirt.why = "--root names another tree: libvirt is asked on this machine only";
  }
  // record --exact: bpf unless --source procfs forces perf; perf when bpf does not load.
  std::string events = "none";
  for (const auto& source : host.event_sources) {
    if (source.name == "bpf" && global.source == SourceChoice::procfs) continue;
    if (source.available) {
      events = source.name;
      break;
    }
    if (global.source == SourceChoice::bpf) break;  // --source bpf: no fallback
  }
  const bool delay_runs = host.delay_source.available && global.source != SourceChoice::procfs;
  const std::string delay = delay_runs ? "bpf" : "none (it needs BPF)";

  if (global.json) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& check : host.checks) {
      checks.push_back({{"name", check.name}, {"ok", check.ok}, {"detail", check.detail}});
    }
    const auto probes = [](const std::vector<SourceProbe>& list) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& source : list) {
        out.push_back(
            {{"name", source.name}, {"available", source.available}, {"why", source.why}});
      }
      return out;
    };
    const nlohmann::json document = {
        {"kernel", host.kernel.empty() ? nlohmann::json(nullptr) : nlohmann::json(host.kernel)},
        {"checks", checks},
        {"sources", probes(host.thread_sources)},
        {"chosen", chosen},
        {"event_sources", probes(host.event_sources)},
        {"delay_source",
         {{"name", host.delay_source.name},
          {"available", host.delay_source.available},
          {"why", host.delay_source.why}}},
        {"libvirt", {{"available", libvirt.available}, {"why", libvirt.why}}},
        {"commands",
         {{"list", chosen},
          {"threads", chosen},
          {"vcpuinfo", chosen},
          {"topology", chosen},
          {"top", chosen},
          {"serve", chosen},
          {"record", chosen},
          {"audit", chosen},
          {"record --exact", events},
          {"delay", delay}}}};
    fmt::print("{}\n", views::dump_json(document, true));
    return 0;
  }
  fmt::print("host\n");
  for (const auto& check : host.checks) {
    fmt::print("  {:<20} {:<4} {}\n", check.name, check.ok ? "yes" : "no", check.detail);
  }
  fmt::print("\nthread facts (auto tries them in this order)\n");
  for (const auto& source : host.thread_sources) {
    fmt::print("  {:<20} {:<4} {}\n", source.name, source.available ? "yes" : "no", source.why);
  }
  fmt::print("\nsched events\n");
  for (const auto& source : host.event_sources) {
    fmt::print("  {:<20} {:<4} {}\n", source.name, source.available ? "yes" : "no", source.why);
  }
  fmt::print("  {:<20} {:<4} {}\n", host.delay_source.name,
             host.delay_source.available ? "yes" : "no", host.delay_source.why);
  fmt::print("\nlibvirt\n  {:<20} {:<4} {}\n", "libvirt", libvirt.available ? "yes" : "no",
             libvirt.why);
  fmt::print("\nlist, threads, vcpuinfo, topology, top, serve, record, audit use: {}\n", chosen);
  fmt::print("record --exact uses: {}\n", events);
  fmt::print("delay uses: {}\n", delay);
  return 0;
}

}  // namespace

void add_doctor_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto* doctor = app.add_subcommand(
      "doctor",
      "what this host offers (kernel, BTF, BPF, tracefs, schedstat, libvirt) and which source each "
      "command uses");
  doctor->callback([&global, &exit_code] { exit_code = run_doctor(global); });
}

}  // namespace vcpumap::cli
