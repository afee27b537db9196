// Fixture roots for audit tests: a real machine's topology (a shared capture from
// ../shared/fixtures/topology, or this project's 2-CPU tree) with /proc threads, cgroup files and
// numa_maps written over it, the way the kernel writes them.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "audit/finding.h"

namespace vcpumap::testing {

// One thread of a fake VM process.
struct AuditThread {
  int tid = 0;
  std::string name;
  std::string affinity;  // Cpus_allowed_list
  int cpu = 0;           // stat field 39
  char state = 'S';
  std::string cgroup = "3:cpuset:/\n0::/\n";  // /proc/PID/task/TID/cgroup
  std::uint64_t cpu_time_ns = 1000;
};

class AuditMachine {
 public:
  // Unpacks `archive` from ../shared/fixtures/topology; an empty name copies the 2-CPU fixture.
  explicit AuditMachine(const std::string& archive);
  ~AuditMachine();
  AuditMachine(const AuditMachine&) = delete;
  AuditMachine& operator=(const AuditMachine&) = delete;

  // True when the shared captures are here (they are absent from a plain clone).
  static bool shared_captures_present();

  const std::filesystem::path& root() const { return root_; }

  // A QEMU process started as `-name guest=NAME,debug-threads=on` with these threads; the
  // first is the main thread.
  void add_qemu(int pid, const std::string& name, const std::vector<AuditThread>& threads);
  // Writes any file below the root.
  void write(const std::string& relative, std::string_view content);

 private:
  std::filesystem::path temp_;
  std::filesystem::path root_;
};

// The findings of one rule that an audit of `machine`'s root gives, in the audit's order.
std::vector<audit::Finding> findings_of(const AuditMachine& machine, const std::string& rule);

}  // namespace vcpumap::testing
