#include "sources/procfs/procfs.h"

#include <dirent.h>
#include <fcntl.h>

#include <fmt/format.h>

#include "sources/procfs/affinity.h"
#include "sources/procfs/parse.h"
#include "util/text.h"

namespace vcpumap::procfs {
namespace {

// Numeric entries of an open directory, which it consumes.
std::vector<int> numeric_entries(Fd dir) {
  std::vector<int> ids;
  if (!dir.valid()) return ids;
  DIR* stream = ::fdopendir(dir.get());
  if (stream == nullptr) return ids;
  dir.release();  // closedir closes it
  while (const dirent* entry = ::readdir(stream)) {
    if (auto id = parse_u64(entry->d_name); id && *id > 0 && *id < (1U << 31)) {
      ids.push_back(static_cast<int>(*id));
    }
  }
  ::closedir(stream);
  return ids;
}

}  // namespace

bool is_own_root(const std::filesystem::path& root) {
  std::error_code error;
  return std::filesystem::equivalent(root, "/", error);
}

Procfs::Procfs(std::filesystem::path root)
    : root_(std::move(root)), proc_(root_ / "proc"), live_(is_own_root(root_)) {}

std::vector<int> Procfs::list_pids() const {
  return numeric_entries(open_at(AT_FDCWD, proc_.c_str(), O_DIRECTORY));
}

std::vector<std::string> Procfs::read_argv(int pid) const {
  const auto text = read_file_at(AT_FDCWD, (proc_ / fmt::to_string(pid) / "cmdline").c_str());
  if (!text) return {};
  return parse_cmdline(*text);
}

std::optional<std::string> Procfs::read_comm(int pid) const {
  const auto text = read_file_at(AT_FDCWD, (proc_ / fmt::to_string(pid) / "stat").c_str());
  if (!text) return std::nullopt;
  auto stat = parse_stat(*text);
  if (!stat) return std::nullopt;
  return std::move(stat->comm);
}

std::optional<std::string> Procfs::read_proc_file(const std::string& relative) const {
  return read_file_at(AT_FDCWD, (proc_ / relative).c_str());
}

std::vector<ThreadReading> Procfs::read_threads(int pid) const {
  std::vector<ThreadReading> threads;
  Fd task_dir = open_at(AT_FDCWD, (proc_ / fmt::to_string(pid) / "task").c_str(), O_DIRECTORY);
  if (!task_dir.valid()) return threads;
  const auto tids = numeric_entries(Fd(::dup(task_dir.get())));
  threads.reserve(tids.size());
  for (const int tid : tids) {
    if (auto thread = read_thread(task_dir.get(), tid)) threads.push_back(std::move(*thread));
  }
  return threads;
}

std::optional<ThreadReading> Procfs::read_thread(int task_dir_fd, int tid) const {
  // Files are opened relative to the process's task folder, so a reused pid cannot mix two
  // processes' threads.
  char path[32];
  const auto path_of = [&](const char* file) {
    *fmt::format_to_n(path, sizeof path - 1, "{}/{}", tid, file).out = '\0';
    return path;
  };
  const auto stat_text = read_file_at(task_dir_fd, path_of("stat"));
  if (!stat_text) return std::nullopt;  // the thread exited: normal
  auto stat = parse_stat(*stat_text);
  if (!stat) return std::nullopt;

  ThreadReading reading;
  reading.tid = tid;
  reading.name = std::move(stat->comm);
  auto& facts = reading.facts;
  facts.state = stat->state;
  facts.utime_ticks = stat->utime_ticks;
  facts.stime_ticks = stat->stime_ticks;
  facts.start_time_ticks = stat->start_time_ticks;
  facts.last_cpu = stat->processor;

  // Missing with CONFIG_SCHEDSTATS off: the fields stay empty ("unavailable"), never 0.
  if (const auto text = read_file_at(task_dir_fd, path_of("schedstat"))) {
    if (const auto schedstat = parse_schedstat(*text)) {
      facts.cpu_time_ns = schedstat->cpu_time_ns;
      facts.run_delay_ns = schedstat->run_delay_ns;
      facts.timeslices = schedstat->timeslices;
    }
  }
  // Missing without CONFIG_SCHED_DEBUG.
  if (const auto text = read_file_at(task_dir_fd, path_of("sched"))) {
    const auto counters = parse_sched(*text);
    facts.migrations = counters.migrations;
    facts.voluntary_switches = counters.voluntary_switches;
    facts.involuntary_switches = counters.involuntary_switches;
  }
  if (live_) {
    facts.affinity = read_affinity(tid).cpus;
  } else if (const auto text = read_file_at(task_dir_fd, path_of("status"))) {
    if (auto affinity = parse_status_affinity(*text)) facts.affinity = std::move(*affinity);
  }
  return reading;
}

}  // namespace vcpumap::procfs
