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

// Buffers the reads of every ThreadFiles of one sampler share: a sample allocates nothing, and a
// kept thread costs its file descriptors, not three texts.
struct ThreadTexts {
  std::string stat, schedstat, sched;
};

// How many files a sampler may still keep open. A ThreadFiles takes one per kept file and gives
// it back when destroyed.
class FileBudget {
 public:
  explicit FileBudget(std::size_t files = 0) : left_(files) {}
  bool take() {
    if (left_ == 0) return false;
    --left_;
    return true;
  }
  void give(std::size_t files) { left_ += files; }
  std::size_t left() const { return left_; }

 private:
  std::size_t left_;
};

// The stat, schedstat and sched files of one thread, opened once relative to its task folder.
// Past the budget, or at the open-file limit, a thread's files are opened for each read instead
// (reopened() tells), so no thread goes unsampled on a host with more threads than descriptors.
class ThreadFiles {
 public:
  // Opens the files of `tid` under `task_dir_fd` and reads them once; nullopt when it is gone.
  // `task_dir_fd` must stay open, and `budget` alive, as long as this object is.
  static std::optional<ThreadFiles> open(int task_dir_fd, int tid, ParsedThread& first,
                                         ThreadTexts& texts, FileBudget& budget);
  // Opens the files of a thread just read elsewhere (a snapshot), without reading them again;
  // `start_time_ticks` is what that read found, so a tid reused in between reads as `reused`.
  static std::optional<ThreadFiles> keep(int task_dir_fd, int tid, std::uint64_t start_time_ticks,
                                         FileBudget& budget);

  ThreadFiles(ThreadFiles&& other) noexcept = default;
  ThreadFiles& operator=(ThreadFiles&& other) noexcept;
  ~ThreadFiles();

  // Re-reads the files into `out` (affinity is left as it was).
  ThreadRead read(ParsedThread& out, ThreadTexts& texts);

  int tid() const { return tid_; }
  std::uint64_t start_time_ticks() const { return start_time_ticks_; }
  // True when some of its files are opened for each read rather than kept open.
  bool reopened() const;

 private:
  struct File {
    enum How { kept, reopen, absent } how = absent;  // absent: no CONFIG_SCHEDSTATS/SCHED_DEBUG
    Fd fd;
  };
  ThreadFiles() = default;
  File open_file(const char* name);
  bool read_file(const File& file, const char* name, std::string& text) const;
  std::optional<ParsedThread> read_all_files(ThreadTexts& texts) const;
  void give_back();

  int task_dir_fd_ = -1;
  int tid_ = 0;
  std::uint64_t start_time_ticks_ = 0;
  FileBudget* budget_ = nullptr;
  File stat_, schedstat_, sched_;
};

// Raises this process's soft open-file limit to its hard limit: a sampler keeps three files open
// per thread. Returns the limit now in force.
std::uint64_t raise_open_file_limit();

}  // namespace vcpumap::procfs
