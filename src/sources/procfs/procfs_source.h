// The procfs engine of the thread-facts source: ROOT/proc read as files. It is the fallback where
// BPF can't run, and the only engine for fixture trees and mounted host roots (--root).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <unordered_map>

#include "sources/procfs/procfs.h"
#include "sources/procfs/thread_files.h"
#include "sources/thread_source.h"

namespace vcpumap::procfs {

class ProcfsSource final : public ThreadSource {
 public:
  // Reads ROOT/proc. With `keep_files` (a sampler), each thread's stat, schedstat and sched stay
  // open between reads, within `kept_file_budget` descriptors (default: the open-file limit,
  // raised to its hard limit, less a reserve); threads past it have their files opened for each
  // read, so no thread and no VM goes unread whatever the limit.
  ProcfsSource(std::filesystem::path root, bool keep_files,
               std::optional<std::size_t> kept_file_budget = std::nullopt);
  ~ProcfsSource() override;

  std::string_view name() const override { return "procfs"; }
  std::vector<ProcessEntry> list_processes() override;
  std::vector<std::string> read_argv(int pid) override;
  std::string read_comm(int pid) override;
  Status read_threads(std::span<const int> pids, std::vector<ThreadReading>& out) override;
  void read_tick_times(std::span<VmThread>, int) override {}  // stat is always read here
  std::vector<std::string> take_notes() override;

 private:
  // One process's kept task folder and its threads' kept files, by tid.
  struct KeptProcess {
    TaskDir dir;
    bool dir_kept = false;  // counted in the budget
    std::map<int, ThreadFiles> threads;
  };
  void read_kept(int pid, KeptProcess& process, std::vector<ThreadReading>& out);
  void note_reopened(const ThreadFiles& files);

  Procfs procfs_;
  bool keep_files_;
  bool live_;
  std::uint64_t open_file_limit_ = 0;
  FileBudget budget_;  // before kept_: their files give back to it when destroyed
  std::unordered_map<int, KeptProcess> kept_;
  ParsedThread scratch_;
  ThreadTexts texts_;
  bool reopen_noted_ = false;
  std::vector<std::string> notes_;
};

}  // namespace vcpumap::procfs
