#include "fixture_tree.h"

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

namespace vcpumap::testing {

FixtureTree::FixtureTree() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "vcpumap-fixture-XXXXXX").string();
  root_ = ::mkdtemp(pattern.data());
  std::filesystem::copy(std::filesystem::path(VCPUMAP_FIXTURES) / "topology-2cpu-vm", root_,
                        std::filesystem::copy_options::recursive);
  std::filesystem::create_directories(root_ / "proc");
}

FixtureTree::~FixtureTree() {
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

void FixtureTree::write(const std::string& relative, std::string_view content) {
  const auto path = root_ / relative;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string FixtureTree::stat_line(const FakeThread& t) {
  // Fields 3..52 of proc(5); 14/15 utime/stime, 22 starttime, 39 processor.
  return fmt::format(
      "{} ({}) {} 1 {} {} 0 -1 4194368 100 0 0 0 {} {} 0 0 20 0 4 0 {} 1048576 300 "
      "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 {} 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
      t.tid, t.name, t.state, t.tid, t.tid, t.utime, t.stime, t.start_time, t.cpu);
}

void FixtureTree::add_process(int pid, const std::vector<std::string>& argv,
                              const std::vector<FakeThread>& threads) {
  std::string cmdline;
  for (const auto& arg : argv) {
    cmdline += arg;
    cmdline += '\0';
  }
  const auto dir = fmt::format("proc/{}", pid);
  write(dir + "/cmdline", cmdline);
  if (!threads.empty()) write(dir + "/stat", stat_line(threads.front()));
  for (const auto& t : threads) {
    const auto task = fmt::format("{}/task/{}", dir, t.tid);
    write(task + "/stat", stat_line(t));
    write(task + "/status",
          fmt::format("Name:\t{}\nState:\t{}\nCpus_allowed:\t3\nCpus_allowed_list:\t{}\n", t.name,
                      t.state, t.affinity));
    if (t.schedstat) {
      write(task + "/schedstat", fmt::format("{} {} 42\n", t.cpu_time_ns, t.run_delay_ns));
    }
    if (t.sched) {
      write(task + "/sched",
            fmt::format("{} ({}, #threads: {})\n"
                        "-------------------------------------------------------------------\n"
                        "se.exec_start                                :         83800.340786\n"
                        "se.nr_migrations                             :{:>21}\n"
                        "nr_switches                                  :                   10\n"
                        "nr_voluntary_switches                        :                    7\n"
                        "nr_involuntary_switches                      :                    3\n",
                        t.name, t.tid, threads.size(), t.migrations));
    }
  }
}

void FixtureTree::add_vanished_thread(int pid, int tid) {
  std::filesystem::create_directories(root_ / fmt::format("proc/{}/task/{}", pid, tid));
}

void FixtureTree::remove_process(int pid) {
  std::filesystem::remove_all(root_ / fmt::format("proc/{}", pid));
}

}  // namespace vcpumap::testing
