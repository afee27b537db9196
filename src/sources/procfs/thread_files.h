// One thread's /proc files kept open between samples, so a sample costs a pread per file instead
// of an open, a read and a close; and the parse of those files into ThreadFacts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "util/fd.h"

namespace vcpumap::procfs {

// The facts one read of stat (+ schedstat, sched when present) gives, and the thread's name.
struct ParsedThread {
  std::string name;
  ThreadFacts facts;  // affinity left empty: it comes from a syscall or status, not these files
};

// Parses the texts of a thread's stat, schedstat and sched files; a missing schedstat or sched
// (nullptr) leaves its fields empty ("unavailable"), never 0. nullopt when stat does not parse.
// Procfs::read_thread and ThreadFiles share it so both give the same facts.
std::optional<ParsedThread> parse_thread_files(std::string_view stat, const std::string* schedstat,
                                               const std::string* sched);

// A thread's affinity: sched_getaffinity when `live` (the tids are our kernel's), else the
// Cpus_allowed_list of ROOT/proc/PID/task/TID/status (a fixture or a mounted host root).
CpuSet read_thread_affinity(int task_dir_fd, int tid, bool live);

// What a re-read found.
enum class ThreadRead {
  ok,      // facts refreshed
  exited,  // stat can no longer be read (ESRCH on a live host): the thread is gone
  reused   // stat holds another start time: the tid now names another thread; facts are new
};

// A kept open ROOT/proc/PID/task folder: a cheap way to see whether the thread list changed.
class TaskDir {
 public:
  // Opens ROOT/proc/PID/task; invalid() when the process is gone.
  TaskDir(const std::filesystem::path& proc, int pid);
  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  // The number of threads, from the folder's link count (the kernel gives threads + 2, as every
  // directory does in a fixture tree); -1 when the process is gone.
  int thread_count() const;
  // The thread ids listed now, unsorted.
  std::vector<int> list_tids() const;

 private:
  Fd fd_;
};

// The stat, schedstat and sched files of one thread, opened once relative to its task folder.
class ThreadFiles {
 public:
  // Opens the files of `tid` under `task_dir_fd` and reads them once; nullopt when it is gone.
  static std::optional<ThreadFiles> open(int task_dir_fd, int tid, ParsedThread& first);

  // Re-reads the kept files into `out` (affinity is left as it was).
  ThreadRead read(ParsedThread& out);

  int tid() const { return tid_; }
  std::uint64_t start_time_ticks() const { return start_time_ticks_; }

 private:
  ThreadFiles() = default;

  int tid_ = 0;
  std::uint64_t start_time_ticks_ = 0;
  Fd stat_;
  Fd schedstat_;                                         // invalid without CONFIG_SCHEDSTATS
  Fd sched_;                                             // invalid without CONFIG_SCHED_DEBUG
  std::string stat_text_, schedstat_text_, sched_text_;  // reused buffers: no allocation a sample
};

}  // namespace vcpumap::procfs
