#include "views/report_text.h"

#include <algorithm>
#include <ctime>

#include <fmt/core.h>

#include "util/text.h"
#include "views/delay_view.h"

namespace vcpumap::views {
namespace {

std::string seconds(std::uint64_t ns) {
  return fmt::format("{:.3f}s", double(ns) / 1e9);
}

std::string wall_time(std::int64_t unix_ns) {
  const std::time_t time = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm parts{};
  ::localtime_r(&time, &parts);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S %Z", &parts);
  return text;
}

std::string residency_text(const record::ThreadReport& thread, const std::vector<int>& cpus) {
  std::vector<std::pair<double, int>> shares;
  for (auto [cpu, share] : thread.residency(cpus)) shares.push_back({share, cpu});
  std::sort(shares.rbegin(), shares.rend());
  std::string text;
  for (auto [share, cpu] : shares) {
    if (!text.empty()) text += ' ';
    text += fmt::format("{}:{:.0f}%", cpu, share * 100);
  }
  return text.empty() ? "-" : text;
}

}  // namespace

std::string vm_letter(int vm_index) {
  std::string letters;
  for (int n = vm_index + 1; n > 0; n = (n - 1) / 26) {
    letters.insert(letters.begin(), static_cast<char>('A' + (n - 1) % 26));
  }
  return letters;
}

namespace {

// Exact mode: each vCPU's migration events against the kernel's se.nr_migrations delta. One line
// when they agree; where they do not, a warning per vCPU that says by how much.
std::string migration_cross_check(const record::Report& report) {
  std::string out;
  int checked = 0, disagree = 0;
  for (const auto& vm : report.vms) {
    for (const auto& vcpu : vm.vcpus) {
      if (!vcpu.migrations_counted) continue;
      ++checked;
      if (!vcpu.migrations_disagree()) continue;
      ++disagree;
      const auto counted = *vcpu.migrations_counted;
      const auto events = vcpu.migration_events;
      const std::string how =
          events < counted ? fmt::format("{} moves were not seen as events", counted - events)
                           : fmt::format("{} more events than moves", events - counted);
      out += fmt::format(
          "WARNING: {} vCPU {}: {} migration events but se.nr_migrations rose by {}: {}; the "
          "count below is the kernel's\n",
          printable(vm.display_name()), vcpu.vcpu, events, counted, how);
    }
  }
  if (checked > 0 && disagree == 0) {
    out += fmt::format(
        "migrations cross-checked: the events of all {} vCPUs equal their se.nr_migrations "
        "deltas\n",
        checked);
  }
  return out;
}

}  // namespace

namespace {

// Who each vCPU waited behind (exact recordings of version 2), as `vcpumap delay` shows it.
std::string render_delay_split(const record::Report& report) {
  if (report.host.mode != record::Mode::exact) return {};
  if (!report.has_delay_split) {
    return "\nwho each vCPU waited behind: n/a (a version-1 recording keeps no culprits)\n";
  }
  std::string out = "\nwho each vCPU waited behind (run delay split by the task that ran there)\n";
  for (const auto& vm : report.vms) {
    for (const auto& vcpu : vm.vcpus) {
      if (!vcpu.delay) continue;
      const auto& delay = *vcpu.delay;
      out += fmt::format(
          "  {} vCPU {} (tid {}): waited {}\n", printable(vm.display_name()), vcpu.vcpu, vcpu.tid,
          delay.run_delay_ns ? seconds(*delay.run_delay_ns)
                             : fmt::format("n/a (split {})", seconds(delay.attributed_ns)));
      out += render_behind_text(delay, "    ");
    }
  }
  return out;
}

nlohmann::json delay_split_json(const record::Report& report, const record::ThreadReport& vcpu) {
  if (!report.has_delay_split || !vcpu.delay) return nullptr;
  const auto& delay = *vcpu.delay;
  return {{"run_delay_ns",
           delay.run_delay_ns ? nlohmann::json(*delay.run_delay_ns) : nlohmann::json(nullptr)},
          {"attributed_ns", delay.attributed_ns},
          {"behind", behind_json(delay)},
          {"mismatch",
           delay.mismatch.empty() ? nlohmann::json(nullptr) : nlohmann::json(delay.mismatch)}};
}

}  // namespace

std::string render_report_summary(const record::Report& report) {
  const auto& host = report.host;
  const double duration_s = double(report.duration_ns) / 1e9;
  std::string out =
      fmt::format("host {} (kernel {}), {} CPUs; {} recording of {} from {}\n",
                  printable(host.hostname), host.kernel, report.cpus.size(), to_string(host.mode),
                  seconds(report.duration_ns), wall_time(host.start_wall_ns));
  out += fmt::format("samples {}, events {}, lost events {}", report.samples, report.events,
                     report.lost_events);
  if (host.mode == record::Mode::sampled) {
    out += fmt::format(
        " (sampled every {}: moves between samples are counted from "
        "se.nr_migrations, where they went is not seen)",
        seconds(host.interval_ns));
  }
  out += '\n';
  if (report.lost_events > 0) {
    out += fmt::format(
        "WARNING: the kernel dropped {} events (ring buffers full): figures of exact mode are "
        "lower bounds\n",
        report.lost_events);
  }
  if (!report.problem.empty()) out += fmt::format("WARNING: {}\n", report.problem);
  if (host.mode == record::Mode::exact) out += migration_cross_check(report);
  for (std::size_t v = 0; v < report.vms.size(); ++v) {
    const auto& vm = report.vms[v];
    out += fmt::format("\nVM {} [{}] pid {}{}\n", printable(vm.display_name()), vm_letter(int(v)),
                       vm.pid, vm.uuid.empty() ? "" : " uuid " + vm.uuid);
    out += fmt::format("  {:>4} {:>7}  {:<24} {:>6} {:>7} {:>5} {:>4} {:>4}  {:<18} {}\n", "vCPU",
                       "TID", "residency (CPU:share)", "migr", "migr/s", "core", "pkg", "node",
                       "longest stay", "run delay");
    for (const auto& vcpu : vm.vcpus) {
      const std::string stay =
          vcpu.longest_stay_cpu >= 0
              ? fmt::format("{} on CPU {}", seconds(vcpu.longest_stay_ns), vcpu.longest_stay_cpu)
              : "-";
      const std::string delay =
          vcpu.run_delay_ns
              ? fmt::format("{} ({:.1f}%)", seconds(*vcpu.run_delay_ns),
                            duration_s > 0 ? double(*vcpu.run_delay_ns) / 1e7 / duration_s : 0.0)
              : "n/a";
      out += fmt::format("  {:>4} {:>7}  {:<24} {:>6} {:>7.2f} {:>5} {:>4} {:>4}  {:<18} {}\n",
                         vcpu.vcpu, vcpu.tid, residency_text(vcpu, report.cpus), vcpu.migrations,
                         duration_s > 0 ? double(vcpu.migrations) / duration_s : 0.0,
                         vcpu.crossed_core, vcpu.crossed_package, vcpu.crossed_node, stay, delay);
    }
    if (vm.vcpus.empty()) out += "  (no vCPU threads recorded)\n";
  }
  if (report.vms.empty()) out += "\nno VM was recorded\n";
  out += render_delay_split(report);
  return out;
}

std::string render_report_timeline(const record::Report& report, int rows) {
  const auto& cells = report.timeline.cells;
  const std::size_t buckets = cells.size();
  const std::size_t per_row =
      std::max<std::size_t>(1, (buckets + std::max(rows, 1) - 1) / std::max(rows, 1));
  std::string out = fmt::format("{:>10} ", "time");
  for (int cpu : report.cpus) out += fmt::format(" {:>5}", fmt::format("CPU{}", cpu));
  out += '\n';
  for (std::size_t first = 0; first < buckets; first += per_row) {
    out += fmt::format("{:>9.3f}s ", double(first * report.timeline.bucket_ns) / 1e9);
    for (std::size_t lane = 0; lane < report.cpus.size(); ++lane) {
      // The vCPU with the most time in this slice of this CPU.
      std::map<std::uint32_t, std::uint64_t> time;
      for (std::size_t b = first; b < std::min(buckets, first + per_row); ++b) {
        for (const auto& cell : cells[b][lane]) time[cell.key] += cell.ns;
      }
      std::string label = ".";
      std::uint64_t best = 0;
      for (auto [key, ns] : time) {
        auto it = report.vcpu_of_key.find(key);
        if (ns > best && it != report.vcpu_of_key.end()) {
          best = ns;
          label = vm_letter(it->second.first) +
                  std::to_string(report.vms[it->second.first].vcpus[it->second.second].vcpu);
        }
      }
      out += fmt::format(" {:>5}", label);
    }
    out += '\n';
  }
  out += fmt::format(
      "(one row = {}; a cell names the vCPU that ran most there; "
      "'.' = no vCPU)\n",
      seconds(per_row * report.timeline.bucket_ns));
  for (std::size_t v = 0; v < report.vms.size(); ++v) {
    out += fmt::format("  {} = {} (pid {})\n", vm_letter(int(v)),
                       printable(report.vms[v].display_name()), report.vms[v].pid);
  }
  return out;
}

nlohmann::json report_json(const record::Report& report) {
  nlohmann::json vms = nlohmann::json::array();
  for (const auto& vm : report.vms) {
    nlohmann::json vcpus = nlohmann::json::array();
    for (const auto& vcpu : vm.vcpus) {
      nlohmann::json residency = nlohmann::json::object();
      for (auto [cpu, share] : vcpu.residency(report.cpus)) {
        residency[std::to_string(cpu)] = share;
      }
      vcpus.push_back({
          {"vcpu", vcpu.vcpu},
          {"tid", vcpu.tid},
          {"migrations", vcpu.migrations},
          {"migrations_source", std::string(record::to_string(vcpu.migrations_source))},
          {"migration_events", report.host.mode == record::Mode::exact
                                   ? nlohmann::json(vcpu.migration_events)
                                   : nlohmann::json(nullptr)},
          {"migrations_counted", vcpu.migrations_counted ? nlohmann::json(*vcpu.migrations_counted)
                                                         : nlohmann::json(nullptr)},
          {"crossed",
           {{"core", vcpu.crossed_core},
            {"package", vcpu.crossed_package},
            {"node", vcpu.crossed_node}}},
          {"residency", residency},
          {"on_cpu_s", double(vcpu.on_cpu_ns) / 1e9},
          {"longest_stay_s", double(vcpu.longest_stay_ns) / 1e9},
          {"longest_stay_cpu", vcpu.longest_stay_cpu},
          {"run_delay_s", vcpu.run_delay_ns ? nlohmann::json(double(*vcpu.run_delay_ns) / 1e9)
                                            : nlohmann::json(nullptr)},
          {"delay", delay_split_json(report, vcpu)},
      });
    }
    vms.push_back({{"pid", vm.pid}, {"name", vm.name}, {"uuid", vm.uuid}, {"vcpus", vcpus}});
  }
  return {
      {"vms", vms},
      {"duration_s", double(report.duration_ns) / 1e9},
      {"mode", std::string(record::to_string(report.host.mode))},
      {"source",
       report.host.source.empty() ? nlohmann::json(nullptr) : nlohmann::json(report.host.source)},
      {"lost_events", report.lost_events},
      {"samples", report.samples},
      {"events", report.events},
      {"host",
       {{"hostname", report.host.hostname}, {"kernel", report.host.kernel}, {"cpus", report.cpus}}},
      {"complete", report.problem.empty()},
      {"problem",
       report.problem.empty() ? nlohmann::json(nullptr) : nlohmann::json(report.problem)},
  };
}

}  // namespace vcpumap::views
