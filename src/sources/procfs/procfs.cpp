#include "sources/procfs/procfs.h"

#include <dirent.h>
#include <fcntl.h>

#include <fmt/format.h>

#include "sources/procfs/parse.h"
#include "sources/procfs/thread_files.h"
#include "util/text.h"

namespace vcpumap::procfs {

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
    if (auto thread = read_thread(task_dir.get(), tid)) {
      thread->pid = pid;
      threads.push_back(std::move(*thread));
    }
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
  const auto stat = read_file_at(task_dir_fd, path_of("stat"));
  if (!stat) return std::nullopt;  // the thread exited: normal
  // Missing without CONFIG_SCHEDSTATS or CONFIG_SCHED_DEBUG: their figures stay unavailable.
  const auto schedstat = read_file_at(task_dir_fd, path_of("schedstat"));
  const auto sched = read_file_at(task_dir_fd, path_of("sched"));
  auto parsed =
      parse_thread_files(*stat, schedstat ? &*schedstat : nullptr, sched ? &*sched : nullptr);
  if (!parsed) return std::nullopt;
  ThreadReading reading{0, tid, std::move(parsed->name), std::move(parsed->facts)};
  reading.facts.affinity = read_thread_affinity(task_dir_fd, tid, live_);
  return reading;
}

}  // namespace vcpumap::procfs
