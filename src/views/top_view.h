// What `vcpumap top` shows, apart from the terminal: the rows (filtered, sorted, flagged), the
// host CPU cells, the batch text of `top -b` and the JSON line of `top --json`. The full-screen
// loop (top_screen.h) only places these lines on the screen.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collect/delay.h"
#include "collect/sampler.h"

namespace vcpumap::views {

// Row orders, with the keys of top(1) where it has one.
enum class TopSort {
  name,        // N: VM name, then vCPU number (the default: rows stay put, CPUs move)
  cpu_pct,     // P: %CPU, highest first
  delay,       // D: run-queue delay, highest first
  migrations,  // M: migrations per second, highest first
};

// What the user chose: on the command line, then by keys.
struct TopSettings {
  double delay_s = 2.0;
  TopSort sort = TopSort::name;
  bool show_emulator = false;  // emulator, I/O and vhost threads too (key e)
  std::string filter;          // only VMs whose name (or pid) contains this
};

// Conditions the view points out, as bits of TopRow::flags.
enum TopFlag : unsigned {
  kFlagSmt = 1U << 0,       // SMT: a vCPU of another VM ran on a sibling of this CPU's core
  kFlagNuma = 1U << 1,      // NUMA: on another node than most of its VM's vCPUs
  kFlagEmulator = 1U << 2,  // EMU: an emulator thread ran on a CPU a vCPU is pinned to
};

// One line of the thread table.
struct TopRow {
  int vm = -1;      // index into Sample::snapshot.vms
  int thread = -1;  // index into that VM's threads
  unsigned flags = 0;
};

// Who each vCPU waited behind over the sample's interval (DelayWatch::update_interval), or
// nullptr when BPF cannot split delay here: the views then say n/a.
using TopWaits = const DelayReport*;

// The rows to show, filtered and sorted, with their flags.
std::vector<TopRow> top_rows(const Sample& sample, const TopSettings& settings);
// The table's header line, then the text of one row; up to AFFINITY they fit in 80 columns.
std::string top_table_header();
std::string top_row_text(const Sample& sample, const TopRow& row, TopWaits waits);
// The WAITED BEHIND cell of vCPU `tid`: its largest culprit and its share of the vCPU's delay
// ("spin 95%"), "-" when it did not wait, "n/a" without the split.
std::string waited_behind_cell(TopWaits waits, int tid);
// The full split of the row's vCPU over the interval (key b), one screen's lines.
std::vector<std::string> top_split_lines(const Sample& sample, const TopRow& row, TopWaits waits);
// The flag words of a row ("SMT NUMA EMU"), empty when none.
std::string flag_text(unsigned flags);

// The summary line: time, interval, load, host utilisation, VM and vCPU counts.
std::string top_summary(const Sample& sample);
// The host CPU cells grouped by package, core and SMT siblings, in lines of at most `width`
// columns. `compact` gives two characters a CPU, for hosts with many CPUs.
std::vector<std::string> cpu_cell_lines(const Sample& sample, int width, bool compact);
// Whether the normal cells fit in `max_lines`; else the caller goes compact.
bool cpu_cells_fit(const Sample& sample, int width, int max_lines);

// One iteration of `top -b`: summary, CPU cells and the table, as plain text.
std::string render_top_batch(const Sample& sample, const TopSettings& settings, TopWaits waits);
// One iteration of `top --json`: {"time", "interval_s", "host": {...}, "vms": [...]}; each vCPU
// has "waited_behind": {"run_delay_ns", "behind": [...]} or null without the split.
nlohmann::json top_json(const Sample& sample, TopWaits waits);
// The help screen's lines (key h).
std::vector<std::string> top_help_lines();

}  // namespace vcpumap::views
