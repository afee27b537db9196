// From a recording to what a person asks of it: per vCPU, the time on each host CPU, how often
// and how far it moved, its longest stay on one CPU and its run-queue delay; and a timeline of
// which vCPU ran on which CPU, in time buckets (so an hour of 64 vCPUs stays drawable).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collect/delay.h"
#include "record/recording.h"
#include "util/result.h"

namespace vcpumap::record {

// Where a migration count comes from.
enum class MigrationSource {
  tracepoint,     // sched_migrate_task events (exact mode)
  nr_migrations,  // the kernel's se.nr_migrations between samples
  observed        // last-CPU changes between samples: a lower bound
};
std::string_view to_string(MigrationSource source);

struct ThreadReport {
  std::uint32_t key = 0;
  int tid = 0;
  std::string name;
  ThreadRole role = ThreadRole::emulator_other;
  int vcpu = -1;
  std::vector<std::uint64_t> residency_ns;  // by index into Report::cpus
  std::vector<std::uint64_t> samples_on;    // samples that saw it on each CPU
  std::uint64_t on_cpu_ns = 0;
  std::uint64_t migrations = 0;
  MigrationSource migrations_source = MigrationSource::observed;
  // Exact mode's cross-check: the sched_migrate_task events seen, and the kernel's se.nr_migrations
  // delta over the samples (nullopt without the counter). When they differ, `migrations` is the
  // kernel's count (source nr_migrations): a short event count is never given as exact.
  std::uint64_t migration_events = 0;
  std::optional<std::uint64_t> migrations_counted;
  bool migrations_disagree() const {
    return migrations_counted && *migrations_counted != migration_events;
  }
  // Moves whose two ends are known, by what they crossed (a lower bound in sampled mode).
  std::uint64_t crossed_core = 0, crossed_package = 0, crossed_node = 0;
  std::uint64_t longest_stay_ns = 0;
  int longest_stay_cpu = -1;
  std::optional<std::uint64_t> run_delay_ns;  // none: the kernel gave no schedstat
  // The schedstat run_delay delta between the first and last samples (exact mode's run_delay_ns
  // comes from the events): what the culprit split is checked against.
  std::optional<std::uint64_t> schedstat_delay_ns;
  // vCPUs of an exact recording of version 2: who it waited behind, as `vcpumap delay` splits it.
  std::optional<VcpuDelay> delay;

  // Share of its CPU time spent on each CPU (by CPU number); by share of samples when it had no
  // CPU time at all.
  std::map<int, double> residency(const std::vector<int>& cpus) const;
};

struct VmReport {
  std::uint32_t key = 0;
  int pid = 0;
  std::string name;
  std::string uuid;
  std::vector<ThreadReport> vcpus;   // by vCPU number
  std::vector<ThreadReport> others;  // emulator, I/O and vhost threads
  std::string display_name() const { return name.empty() ? "pid " + std::to_string(pid) : name; }
};

// Time on CPU of one vCPU thread in one bucket of one CPU lane.
struct TimelineCell {
  std::uint32_t key = 0;
  std::uint64_t ns = 0;
};

struct Timeline {
  std::uint64_t bucket_ns = 1;
  // cells[bucket][cpu index]: the vCPUs that ran there, most time first.
  std::vector<std::vector<std::vector<TimelineCell>>> cells;
};

struct Report {
  HostBlock host;
  std::uint64_t duration_ns = 0;
  std::uint64_t samples = 0;
  std::uint64_t events = 0;
  std::uint64_t lost_events = 0;
  std::map<int, std::uint64_t> lost_by_cpu;
  std::string end_reason;  // from the end block
  std::string problem;     // non-empty when the file was cut short or damaged
  std::vector<int> cpus;   // host CPUs: the lanes, by index
  std::vector<VmReport> vms;
  Timeline timeline;
  // True when each vCPU's `delay` holds its culprit split (exact recordings of version 2).
  bool has_delay_split = false;
  // A vCPU thread's key -> (index into vms, index into its vcpus).
  std::map<std::uint32_t, std::pair<int, int>> vcpu_of_key;
};

struct AnalysisOptions {
  int max_buckets = 1000;  // the timeline's resolution at most
};

// Consumes a recording's blocks in file order; `duration_ns` (the last time in the file) sets the
// timeline's buckets. Usable on blocks made in memory (tests).
class Analyzer {
 public:
  Analyzer(const HostBlock& host, std::uint64_t duration_ns, const AnalysisOptions& options);
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // Takes in the next block.
  void add(const Block& block);
  // The report once every block is in.
  Report finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Splits each vCPU's run delay of an exact recording by culprit (ThreadReport::delay), from the
// file's events replayed through the same splitter a live event stream would feed.
Status split_delays(const std::filesystem::path& path, Report& report);

// Reads a recording file twice (once for its span, once to analyse; a third time for the culprit
// split of an exact recording) and gives its report. A file cut short or damaged gives the
// report of what was readable, with Report::problem set.
Result<Report> analyze_file(const std::filesystem::path& path, const AnalysisOptions& options);

}  // namespace vcpumap::record
