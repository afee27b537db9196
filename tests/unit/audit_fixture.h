// Fixture roots for audit tests: a real machine's topology (a shared capture from
// ../shared/fixtures/topology, or this project's 2-CPU tree) with /proc threads, cgroup files and
// numa_maps written over it, the way the kernel writes them.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit.h"
#include "audit/finding.h"

namespace vcpumap::testing {

// Shared topology captures the audit tests run on.
constexpr const char* kTwoSocketNuma = "32intel64-2p8co2t+8ve";  // nodes 0-7,16-23 / 8-15,24-31
constexpr const char* kOfflines = "16em64t-4s2c2t-offlines";     // CPUs 2, 5, 13, 14 offline

// Skips a test that needs the shared captures where they are absent.
#define SKIP_WITHOUT_SHARED()                                                                     \
  if (!::vcpumap::testing::AuditMachine::shared_captures_present()) {                             \
    GTEST_SKIP() << "../shared/fixtures/topology is absent: audit tests on real topologies need " \
                    "../shared";                                                                  \
  }

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

// A QEMU guest: main thread with `emulator` affinity, then one vCPU per entry of `vcpus`.
std::vector<AuditThread> guest(int pid, const std::string& emulator,
                               const std::vector<std::string>& vcpus);
// The audit's first look at a fixture root (a test failure when it fails).
audit::AuditInput look(const AuditMachine& machine);
// Makes a VM a libvirt domain with this configured pinning (as virsh vcpupin shows it).
void configure(audit::AuditInput& input, const std::string& name,
               const std::vector<std::string>& vcpu_pins, const std::string& emulator_pin,
               const std::string& cpu_policy = "", const std::string& emulator_policy = "");
// The findings of one rule.
std::vector<audit::Finding> with_rule(const std::vector<audit::Finding>& findings,
                                      const std::string& rule);
// The findings as `vcpumap audit` prints them, for failure messages.
std::string all_text(const std::vector<audit::Finding>& findings);
// The findings of one rule that an audit of `machine`'s root gives, in the audit's order.
std::vector<audit::Finding> findings_of(const AuditMachine& machine, const std::string& rule);

}  // namespace vcpumap::testing
