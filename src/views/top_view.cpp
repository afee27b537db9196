#include "views/top_view.h"

#include <time.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "util/text.h"
#include "views/delay_view.h"

namespace vcpumap::views {
namespace {

constexpr int kVmWidth = 13;
constexpr int kCellWidth = 26;  // normal mode: three cells in 80 columns
constexpr int kWaitWidth = 16;  // WAITED BEHIND: a culprit's label and its share

std::string truncate(std::string text, std::size_t width) {
  if (text.size() > width) text.resize(width);
  return text;
}

std::string vm_label(const Vm& vm, std::size_t width) {
  return truncate(printable(vm.display_name()), width);
}

// What the VCPU column says for a thread that is not a vCPU.
std::string thread_label(const VmThread& thread) {
  switch (thread.role) {
    case ThreadRole::vcpu:
      return fmt::to_string(thread.vcpu);
    case ThreadRole::iothread:
      return truncate("io:" + printable(thread.iothread), 6);
    case ThreadRole::vhost:
      return "vhost";
    case ThreadRole::emulator_main:
      return "main";
    default:
      return "emu";
  }
}

std::string percent(const std::optional<double>& value, bool approximate) {
  if (!value) return "-";
  return fmt::format("{:.1f}{}", *value, approximate ? "~" : "");
}

bool matches(const Vm& vm, const std::string& filter) {
  if (filter.empty()) return true;
  return vm.name.find(filter) != std::string::npos || fmt::to_string(vm.pid) == filter;
}

// The CPU's NUMA node, -1 when unknown.
int node_of(const Topology& topology, int cpu) {
  const auto* found = topology.find(cpu);
  return found == nullptr ? -1 : found->node;
}

// Sets the flags of every row; computed over all VMs so a filter does not hide a neighbour.
void set_flags(const Sample& sample, std::vector<TopRow>& rows) {
  const auto& topology = sample.snapshot.topology;
  const auto& vms = sample.snapshot.vms;
  const auto rates_of = [&](const TopRow& row) -> const ThreadRates& {
    return sample.rates[row.vm][row.thread];
  };
  const auto thread_of = [&](const TopRow& row) -> const VmThread& {
    return vms[row.vm].threads[row.thread];
  };
  // SMT: VMs whose vCPUs ran on each multi-threaded core (keyed by its first sibling).
  std::map<int, std::set<int>> vms_on_core;
  const auto core_key = [&](int cpu) {
    const auto* found = topology.find(cpu);
    if (found == nullptr || found->siblings.count() < 2) return -1;
    return found->siblings.cpus().front();
  };
  // NUMA: each VM's home node is the node most of its vCPUs are on.
  std::map<int, std::map<int, int>> vcpus_on_node;
  // EMU: CPUs some vCPU is pinned to (its affinity is narrower than the online CPUs).
  CpuSet pinned;
  for (const auto& row : rows) {
    const auto& thread = thread_of(row);
    const auto& rates = rates_of(row);
    if (thread.role != ThreadRole::vcpu) continue;
    if (rates.ran) {
      if (const int core = core_key(rates.cpu); core >= 0) vms_on_core[core].insert(row.vm);
    }
    if (const int node = node_of(topology, rates.cpu); node >= 0) ++vcpus_on_node[row.vm][node];
    const auto& affinity = thread.facts.affinity;
    if (!affinity.empty() && !topology.online.empty() && !topology.online.is_subset_of(affinity)) {
      pinned = pinned | affinity;
    }
  }
  CpuSet emulator_cpus;  // CPUs where an emulator thread ran on a pinned vCPU's CPU
  for (auto& row : rows) {
    const auto& thread = thread_of(row);
    const auto& rates = rates_of(row);
    if (thread.role == ThreadRole::vcpu) continue;
    if (rates.ran && rates.cpu >= 0 && pinned.contains(rates.cpu)) {
      row.flags |= kFlagEmulator;
      emulator_cpus.add(rates.cpu);
    }
  }
  for (auto& row : rows) {
    const auto& thread = thread_of(row);
    const auto& rates = rates_of(row);
    if (thread.role != ThreadRole::vcpu) continue;
    if (const int core = core_key(rates.cpu); rates.ran && core >= 0) {
      if (vms_on_core[core].size() > 1) row.flags |= kFlagSmt;
    }
    const auto& nodes = vcpus_on_node[row.vm];
    if (topology.nodes.size() > 1 && !nodes.empty()) {
      const auto home = std::max_element(nodes.begin(), nodes.end(),
                                         [](auto& a, auto& b) { return a.second < b.second; });
      const int node = node_of(topology, rates.cpu);
      if (node >= 0 && node != home->first) row.flags |= kFlagNuma;
    }
    if (!(thread.facts.affinity & emulator_cpus).empty() &&
        !topology.online.is_subset_of(thread.facts.affinity)) {
      row.flags |= kFlagEmulator;
    }
  }
}

// Host CPUs in display order: by package, then core (by its first CPU), then sibling.
struct CoreGroup {
  int package = -1;
  std::vector<int> cpus;
};

std::vector<CoreGroup> core_groups(const Sample& sample) {
  const auto& topology = sample.snapshot.topology;
  std::map<std::pair<int, int>, CoreGroup> groups;  // (package, first sibling)
  for (const auto& load : sample.cpus) {
    const auto* cpu = topology.find(load.cpu);
    const int package = cpu == nullptr ? -1 : cpu->package;
    const int first = cpu == nullptr || cpu->siblings.empty() ? load.cpu : cpu->siblings.cpus()[0];
    auto& group = groups[{package, first}];
    group.package = package;
    group.cpus.push_back(load.cpu);
  }
  std::vector<CoreGroup> ordered;
  for (auto& [key, group] : groups) ordered.push_back(std::move(group));
  return ordered;
}

const CpuLoad* load_of(const Sample& sample, int cpu) {
  for (const auto& load : sample.cpus) {
    if (load.cpu == cpu) return &load;
  }
  return nullptr;
}

std::string normal_cell(const Sample& sample, const CpuLoad& load) {
  // "web:0,2 db:1": one label per VM with its vCPU numbers, cut with "+N" when too long.
  auto ran = load.vcpus;
  std::sort(ran.begin(), ran.end());
  std::vector<std::string> labels;
  for (std::size_t k = 0; k < ran.size(); ++k) {
    if (k == 0 || ran[k].first != ran[k - 1].first) {
      labels.push_back(
          fmt::format("{}:{}", vm_label(sample.snapshot.vms[ran[k].first], 8), ran[k].second));
    } else {
      labels.back() += fmt::format(",{}", ran[k].second);
    }
  }
  constexpr std::size_t kRoom = kCellWidth - 1 - 12;  // after "cpuN   UTIL% "
  std::string vcpus;
  for (std::size_t k = 0; k < labels.size(); ++k) {
    const auto joined = vcpus + (vcpus.empty() ? "" : " ") + labels[k];
    const bool last = k + 1 == labels.size();
    if (joined.size() > kRoom || (!last && joined.size() + 3 > kRoom)) {
      vcpus += fmt::format("{}+{}", vcpus.empty() ? "" : " ", labels.size() - k);
      break;
    }
    vcpus = joined;
  }
  const auto util = load.util_pct ? fmt::format("{:.0f}%", *load.util_pct) : std::string("-");
  auto cell = fmt::format("cpu{:<3}{:>5} {}", load.cpu, util, vcpus.empty() ? "-" : vcpus);
  cell = truncate(std::move(cell), kCellWidth - 1);
  cell.resize(kCellWidth - 1, ' ');
  return cell;
}

std::string compact_cell(const CpuLoad& load) {
  char util = '?';
  if (load.util_pct) {
    util = *load.util_pct >= 99.5 ? '#'
           : *load.util_pct < 5.0 ? '.'
                                  : static_cast<char>('0' + static_cast<int>(*load.util_pct / 10));
  }
  const auto count = load.vcpus.size();
  const char vcpus = count == 0 ? ' ' : count > 9 ? '+' : static_cast<char>('0' + count);
  return {util, vcpus};
}

const VcpuDelay* find_wait(TopWaits waits, int tid) {
  if (waits == nullptr) return nullptr;
  for (const auto& vm : waits->vms) {
    for (const auto& vcpu : vm.vcpus) {
      if (vcpu.tid == tid) return &vcpu;
    }
  }
  return nullptr;
}

std::string rstrip(std::string line) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

}  // namespace

std::vector<TopRow> top_rows(const Sample& sample, const TopSettings& settings) {
  const auto& vms = sample.snapshot.vms;
  std::vector<TopRow> all;
  for (std::size_t i = 0; i < vms.size(); ++i) {
    for (std::size_t j = 0; j < vms[i].threads.size(); ++j) {
      all.push_back({static_cast<int>(i), static_cast<int>(j), 0});
    }
  }
  set_flags(sample, all);
  std::vector<TopRow> rows;
  for (const auto& row : all) {
    const auto& vm = vms[row.vm];
    if (!matches(vm, settings.filter)) continue;
    if (!settings.show_emulator && vm.threads[row.thread].role != ThreadRole::vcpu) continue;
    rows.push_back(row);
  }
  const auto key = [&](const TopRow& row) -> double {
    const auto& rates = sample.rates[row.vm][row.thread];
    const auto& value = settings.sort == TopSort::cpu_pct ? rates.cpu_pct
                        : settings.sort == TopSort::delay ? rates.delay_pct
                                                          : rates.migrations_per_s;
    return value.value_or(-1.0);
  };
  const auto by_name = [&](const TopRow& a, const TopRow& b) {
    const auto& va = vms[a.vm];
    const auto& vb = vms[b.vm];
    return std::tie(va.name, va.pid, a.thread) < std::tie(vb.name, vb.pid, b.thread);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const TopRow& a, const TopRow& b) {
    if (settings.sort == TopSort::name) return by_name(a, b);
    const double ka = key(a), kb = key(b);
    if (ka != kb) return ka > kb;
    return by_name(a, b);
  });
  return rows;
}

std::string top_table_header() {
  return fmt::format("{:<{}} {:>6} {:>7} {:>4}  {:>6} {:>6} {:<{}} {:>7} {:<10} {}", "VM", kVmWidth,
                     "VCPU", "TID", "CPU", "%CPU", "%DELAY", "WAITED BEHIND", kWaitWidth, "MIGR/S",
                     "AFFINITY", "FLAGS");
}

std::string waited_behind_cell(TopWaits waits, int tid) {
  if (waits == nullptr) return "n/a";
  const auto* vcpu = find_wait(waits, tid);
  if (vcpu == nullptr || !vcpu->run_delay_ns) return "n/a";  // not watched, or delay unknown
  if (vcpu->behind.empty()) return "-";                      // it did not wait
  const auto& largest = vcpu->behind.front();
  const double whole = static_cast<double>(
      std::max<std::uint64_t>(std::max(*vcpu->run_delay_ns, vcpu->attributed_ns), 1));
  return fmt::format("{:<{}} {:>3.0f}%",
                     truncate(printable(culprit_label(largest)), kWaitWidth - 5), kWaitWidth - 5,
                     100.0 * largest.ns / whole);
}

std::vector<std::string> top_split_lines(const Sample& sample, const TopRow& row, TopWaits waits) {
  const auto& vm = sample.snapshot.vms[row.vm];
  const auto& thread = vm.threads[row.thread];
  std::vector<std::string> lines;
  if (thread.role != ThreadRole::vcpu) {
    lines.push_back(fmt::format("{} {} (tid {}) is no vCPU: only vCPUs' delay is split",
                                printable(vm.display_name()), thread_label(thread), thread.tid));
    return lines;
  }
  lines.push_back(fmt::format("{} vCPU {} (tid {}): who it waited behind over the last {:.1f} s",
                              printable(vm.display_name()), thread.vcpu, thread.tid,
                              sample.interval_s));
  lines.emplace_back();
  const auto* vcpu = find_wait(waits, thread.tid);
  if (waits == nullptr) {
    lines.push_back("  n/a: the split needs BPF on the sched tracepoints (see the note at start)");
  } else if (vcpu == nullptr || !vcpu->run_delay_ns) {
    lines.push_back("  n/a: its run delay is unknown (no schedstat, or it was not read twice)");
  } else {
    const double window = std::max(sample.interval_s, 1e-9) * 1e9;
    lines.push_back(fmt::format("  waited {:.1f} ms ({:.1f}% of the interval)",
                                *vcpu->run_delay_ns / 1e6, 100.0 * *vcpu->run_delay_ns / window));
    for (auto& line : culprit_lines(*vcpu, 15)) lines.push_back(std::move(line));
    if (vcpu->behind.empty()) lines.push_back("    (it did not wait)");
  }
  return lines;
}

std::string top_row_text(const Sample& sample, const TopRow& row, TopWaits waits) {
  const auto& vm = sample.snapshot.vms[row.vm];
  const auto& thread = vm.threads[row.thread];
  const auto& rates = sample.rates[row.vm][row.thread];
  std::string migrations = "-";
  if (rates.migrations_per_s) {
    migrations = fmt::format("{:.1f}{}", *rates.migrations_per_s,
                             rates.migrations_source == RateSource::observed ? "~" : "");
  }
  const auto cpu = rates.cpu >= 0 ? fmt::to_string(rates.cpu) : std::string("-");
  const auto waited =
      thread.role == ThreadRole::vcpu ? waited_behind_cell(waits, thread.tid) : std::string();
  return rstrip(fmt::format("{:<{}} {:>6} {:>7} {:>4}{} {:>6} {:>6} {:<{}} {:>7} {:<10} {}",
                            vm_label(vm, kVmWidth), kVmWidth, thread_label(thread), thread.tid, cpu,
                            rates.cpu_changed ? '*' : ' ',
                            percent(rates.cpu_pct, rates.cpu_source == RateSource::ticks),
                            percent(rates.delay_pct, false), waited, kWaitWidth, migrations,
                            truncate(thread.facts.affinity.to_list(), 10), flag_text(row.flags)));
}

std::string flag_text(unsigned flags) {
  std::string text;
  const auto add = [&](unsigned bit, const char* word) {
    if ((flags & bit) == 0) return;
    if (!text.empty()) text += ' ';
    text += word;
  };
  add(kFlagSmt, "SMT");
  add(kFlagNuma, "NUMA");
  add(kFlagEmulator, "EMU");
  return text;
}

std::string top_summary(const Sample& sample) {
  const auto seconds = std::chrono::system_clock::to_time_t(sample.snapshot.wall);
  struct tm local {};
  ::localtime_r(&seconds, &local);
  int vcpus = 0;
  for (const auto& vm : sample.snapshot.vms) vcpus += static_cast<int>(vm.vcpus().size());
  std::string load = "-";
  if (sample.load1)
    load = fmt::format("{:.2f} {:.2f} {:.2f}", *sample.load1, *sample.load5, *sample.load15);
  return fmt::format("vcpumap top - {:02}:{:02}:{:02}  {:.1f}s  load {}  CPU {}  {} VMs {} vCPUs",
                     local.tm_hour, local.tm_min, local.tm_sec, sample.interval_s, load,
                     sample.host_util_pct ? fmt::format("{:.0f}%", *sample.host_util_pct) : "-",
                     sample.snapshot.vms.size(), vcpus);
}

bool cpu_cells_fit(const Sample& sample, int width, int max_lines) {
  return static_cast<int>(cpu_cell_lines(sample, width, false).size()) <= max_lines;
}

std::vector<std::string> cpu_cell_lines(const Sample& sample, int width, bool compact) {
  std::vector<std::string> lines;
  const auto groups = core_groups(sample);
  const bool packages = !groups.empty() && groups.front().package != groups.back().package;
  const std::size_t cell = compact ? 2 : kCellWidth;
  const std::size_t margin = compact ? 5 : 0;  // compact lines start with the first CPU number
  std::string line;
  int package = groups.empty() ? -1 : groups.front().package;
  const auto flush = [&] {
    if (!line.empty()) lines.push_back(rstrip(line));
    line.clear();
  };
  if (packages && !compact) lines.push_back(fmt::format("package {}", package));
  for (const auto& group : groups) {
    if (group.package != package) {
      flush();
      package = group.package;
      if (!compact) lines.push_back(fmt::format("package {}", package));
    }
    // Keep a core's siblings on one line when they fit.
    const std::size_t needed = group.cpus.size() * cell + 1;
    if (!line.empty() && line.size() + needed > static_cast<std::size_t>(width)) flush();
    for (std::size_t k = 0; k < group.cpus.size(); ++k) {
      const auto* load = load_of(sample, group.cpus[k]);
      if (load == nullptr) continue;
      if (!line.empty() && line.size() + cell + 1 > static_cast<std::size_t>(width)) flush();
      if (line.empty() && compact) line = fmt::format("{:>4} ", load->cpu);
      // A core starts with '|' (normal) or ' ' (compact); its siblings follow without one.
      if (k == 0) {
        if (line.size() > margin || !compact) line += compact ? " " : (line.empty() ? "" : "|");
      } else if (!compact) {
        line += ' ';
      }
      line += compact ? compact_cell(*load) : normal_cell(sample, *load);
    }
  }
  flush();
  if (compact) {
    lines.push_back("(per CPU: utilisation tens 0-9, '#' full, '.' idle; then vCPUs that ran)");
  }
  return lines;
}

std::string render_top_batch(const Sample& sample, const TopSettings& settings, TopWaits waits) {
  std::string text = top_summary(sample) + "\n";
  for (const int pid : sample.vms_started) text += fmt::format("VM started: pid {}\n", pid);
  for (const int pid : sample.vms_exited) text += fmt::format("VM exited: pid {}\n", pid);
  const int width = 80;
  const bool compact = !cpu_cells_fit(sample, width, 8);
  for (const auto& line : cpu_cell_lines(sample, width, compact)) text += line + "\n";
  text += "\n" + top_table_header() + "\n";
  bool approximate = false;
  for (const auto& row : top_rows(sample, settings)) {
    const auto& rates = sample.rates[row.vm][row.thread];
    approximate = approximate || (rates.cpu_pct && rates.cpu_source == RateSource::ticks) ||
                  (rates.migrations_per_s && rates.migrations_source == RateSource::observed);
    text += top_row_text(sample, row, waits) + "\n";
  }
  if (approximate) {
    text += "~ %CPU from clock ticks (no schedstat) / migrations seen as CPU changes (no sched)\n";
  }
  return text + "\n";
}

nlohmann::json top_json(const Sample& sample, TopWaits waits) {
  using nlohmann::json;
  const auto optional = [](const std::optional<double>& value) -> json {
    return value ? json(*value) : json(nullptr);
  };
  const auto& wall = sample.snapshot.wall;
  const auto seconds = std::chrono::system_clock::to_time_t(wall);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count() % 1000;
  struct tm utc {};
  ::gmtime_r(&seconds, &utc);
  json document;
  document["time"] =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
  document["sequence"] = sample.sequence;
  document["source"] = sample.snapshot.source;
  document["interval_s"] = sample.interval_s;
  json cpus = json::array();
  for (const auto& load : sample.cpus) {
    json ran = json::array();
    for (const auto& [vm, vcpu] : load.vcpus) {
      ran.push_back({{"vm", sample.snapshot.vms[vm].name},
                     {"pid", sample.snapshot.vms[vm].pid},
                     {"vcpu", vcpu}});
    }
    cpus.push_back({{"cpu", load.cpu}, {"util_pct", optional(load.util_pct)}, {"vcpus", ran}});
  }
  document["host"] = {
      {"util_pct", optional(sample.host_util_pct)},
      {"load", sample.load1 ? json({*sample.load1, *sample.load5, *sample.load15}) : json(nullptr)},
      {"cpus", cpus}};
  TopSettings all;
  all.show_emulator = true;
  std::map<std::pair<int, int>, unsigned> flags;
  for (const auto& row : top_rows(sample, all)) flags[{row.vm, row.thread}] = row.flags;
  json vms = json::array();
  for (std::size_t i = 0; i < sample.snapshot.vms.size(); ++i) {
    const auto& vm = sample.snapshot.vms[i];
    json entry = {{"name", vm.name}, {"pid", vm.pid}, {"uuid", vm.uuid}};
    json vcpus = json::array(), others = json::array();
    for (std::size_t j = 0; j < vm.threads.size(); ++j) {
      const auto& thread = vm.threads[j];
      const auto& rates = sample.rates[i][j];
      json item = {{"tid", thread.tid},
                   {"cpu", rates.cpu},
                   {"cpu_changed", rates.cpu_changed},
                   {"cpu_pct", optional(rates.cpu_pct)},
                   {"cpu_pct_source", to_string(rates.cpu_source)},
                   {"delay_pct", optional(rates.delay_pct)},
                   {"migrations_per_s", optional(rates.migrations_per_s)},
                   {"migrations_source", to_string(rates.migrations_source)},
                   {"switches_per_s", optional(rates.switches_per_s)},
                   {"state", std::string(1, thread.facts.state)},
                   {"affinity", thread.facts.affinity.to_list()}};
      json words = json::array();
      const auto flag_words = flag_text(flags[{static_cast<int>(i), static_cast<int>(j)}]);
      for (std::size_t start = 0; start < flag_words.size();) {
        const auto end = std::min(flag_words.find(' ', start), flag_words.size());
        words.push_back(flag_words.substr(start, end - start));
        start = end + 1;
      }
      item["flags"] = words;
      if (thread.role == ThreadRole::vcpu) {
        item["vcpu"] = thread.vcpu;
        item["waited_behind"] = nullptr;  // unknown without the split, not "nobody"
        if (const auto* wait = find_wait(waits, thread.tid); wait && wait->run_delay_ns) {
          json behind = json::array();
          for (const auto& culprit : wait->behind) behind.push_back(culprit_json(culprit));
          item["waited_behind"] = {{"run_delay_ns", *wait->run_delay_ns}, {"behind", behind}};
        }
        vcpus.push_back(std::move(item));
      } else {
        item["name"] = thread.name;
        item["role"] = to_string(thread.role);
        if (thread.role == ThreadRole::iothread) item["iothread"] = thread.iothread;
        others.push_back(std::move(item));
      }
    }
    entry["vcpus"] = std::move(vcpus);
    entry["threads"] = std::move(others);
    vms.push_back(std::move(entry));
  }
  document["vms"] = std::move(vms);
  document["vms_started"] = sample.vms_started;
  document["vms_exited"] = sample.vms_exited;
  return document;
}

std::vector<std::string> top_help_lines() {
  return {
      "vcpumap top: every vCPU of every VM, where it runs and how long it waits",
      "",
      "  q        quit                     space  refresh now",
      "  d        change the delay (s)     f      filter by VM name or pid (empty: all)",
      "  e        emulator, I/O and vhost threads on/off",
      "  P        sort by %CPU             D      sort by %DELAY (run-queue wait)",
      "  M        sort by migrations/s     N      sort by VM name and vCPU (default)",
      "  up/down, PgUp/PgDn  select a row  h or ?  this help (any key returns)",
      "  b or Enter  who the selected vCPU waited behind (any key returns)",
      "",
      "Columns: CPU is the last CPU, '*' when it changed since the previous refresh;",
      "  %CPU and %DELAY are of wall time (100 = one CPU); ~ marks %CPU from clock",
      "  ticks (no schedstat) or migrations counted from CPU changes (no sched file).",
      "  WAITED BEHIND: what ran while the vCPU waited, the most of it, and its share",
      "  of the vCPU's delay over the interval (n/a without BPF).",
      "CPU cells: utilisation and the vCPUs (VM:vcpu) seen there in the interval.",
      "Flags: SMT  a vCPU of another VM ran on an SMT sibling of the same core",
      "       NUMA the vCPU runs on another NUMA node than most of its VM's vCPUs",
      "       EMU  an emulator/I/O thread ran on a CPU that a vCPU is pinned to",
  };
}

}  // namespace vcpumap::views
