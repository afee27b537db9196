// Builds small /proc trees in a temporary folder for tests: processes, threads and the files
// vcpumap reads, written the way the kernel writes them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"

namespace vcpumap::testing {

struct FakeThread {
  int tid = 0;
  std::string name;
  char state = 'S';
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  std::uint64_t start_time = 1000;
  int cpu = 0;
  std::string affinity = "0-1";
  bool schedstat = true;  // false: a kernel without CONFIG_SCHEDSTATS
  bool sched = true;      // false: a kernel without CONFIG_SCHED_DEBUG
  std::uint64_t cpu_time_ns = 0;
  std::uint64_t run_delay_ns = 0;
  std::uint64_t migrations = 0;
};

// A host CPU with its place in the topology, for topologies built in a test.
inline Cpu make_cpu(int number, int core, int package, int node) {
  Cpu cpu;
  cpu.cpu = number;
  cpu.core = core;
  cpu.package = package;
  cpu.node = node;
  return cpu;
}

class FixtureTree {
 public:
  // A new temporary root holding a copy of the 2-CPU topology fixture under sys/.
  FixtureTree();
  ~FixtureTree();
  FixtureTree(const FixtureTree&) = delete;
  FixtureTree& operator=(const FixtureTree&) = delete;

  const std::filesystem::path& root() const { return root_; }

  // A process: ROOT/proc/PID/{cmdline,stat,task/...} with its threads (the first is the main one).
  void add_process(int pid, const std::vector<std::string>& argv,
                   const std::vector<FakeThread>& threads);
  // A thread folder whose files are gone: it exited between listing and reading.
  void add_vanished_thread(int pid, int tid);
  // Writes any file below the root.
  void write(const std::string& relative, std::string_view content);
  // Removes a process's folder.
  void remove_process(int pid);

  // A stat line as the kernel prints it.
  static std::string stat_line(const FakeThread& thread);

 private:
  std::filesystem::path root_;
};

}  // namespace vcpumap::testing
