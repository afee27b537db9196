// Reads processes and threads under ROOT/proc. A process or thread that exits while it is being
// read is normal on a live host: it is skipped (nullopt), not an error.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "sources/thread_source.h"
#include "util/fd.h"

namespace vcpumap::procfs {

// Numeric entries (pids, tids) of an open directory, which it consumes; empty when invalid.
std::vector<int> numeric_entries(Fd dir);

// True when `root` is this machine's own root, so tids mean something to our kernel's syscalls.
bool is_own_root(const std::filesystem::path& root);

class Procfs {
 public:
  // `root` is the file-system root holding proc/ ("/" for this machine).
  explicit Procfs(std::filesystem::path root);

  // Numeric entries of ROOT/proc: every process id, unsorted.
  std::vector<int> list_pids() const;
  // The argument vector of a process; empty for kernel threads and processes that exited.
  std::vector<std::string> read_argv(int pid) const;
  // The comm name of a process (stat field 2), nullopt when it exited.
  std::optional<std::string> read_comm(int pid) const;
  // Every thread of a process with its facts; empty when the process exited.
  std::vector<ThreadReading> read_threads(int pid) const;
  // Reads one file below ROOT/proc (e.g. "1234/numa_maps"); nullopt when absent.
  std::optional<std::string> read_proc_file(const std::string& relative) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::optional<ThreadReading> read_thread(int task_dir_fd, int tid) const;

  std::filesystem::path root_;
  std::filesystem::path proc_;
  // Affinity comes from sched_getaffinity on this machine's own /proc, from status elsewhere
  // (a fixture tree or a mounted host root whose tids mean nothing to our kernel).
  bool live_;
};

}  // namespace vcpumap::procfs
