// vcpumap audit's rules over fixture roots: real machines' topologies (SMT, NUMA, offline CPUs)
// from ../shared/fixtures/topology with fake QEMU processes, cgroup files and numa_maps written
// over them; and the cgroup and numa_maps readers the audit adds.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <regex>

#include "audit/audit.h"
#include "audit_fixture.h"
#include "views/audit_view.h"
#include "views/json.h"

namespace vcpumap {
namespace {

using testing::all_text;
using testing::AuditMachine;
using testing::AuditThread;
using testing::configure;
using testing::guest;
using testing::kOfflines;
using testing::kTwoSocketNuma;
using testing::look;
using testing::with_rule;

// Two well-placed guests on a 2-socket NUMA host: each vCPU alone on a core of node 0, the
// emulator threads on a CPU no vCPU uses, memory on node 0. Nothing to say.
TEST(Audit, WellPinnedGuestsGiveNoFindings) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2", "3"}));
  machine.add_qemu(200, "db", guest(200, "1", {"4", "5"}));
  machine.write("proc/100/numa_maps",
                "7f00 default anon=5000 dirty=5000 N0=5000 kernelpagesize_kB=4\n");
  machine.write("proc/200/numa_maps", "7f00 default anon=900 N0=800 N1=100 kernelpagesize_kB=4\n");
  auto input = look(machine);
  configure(input, "web", {"2", "3"}, "0", "dedicated");
  configure(input, "db", {"4", "5"}, "1");
  const auto findings = audit::run_rules(input);
  EXPECT_TRUE(findings.empty()) << all_text(findings);
  EXPECT_NE(all_text(findings).find("no findings in 2 VMs"), std::string::npos);
  EXPECT_FALSE(audit::any_at_or_above(findings, audit::Severity::info));
}

TEST(Audit, TwoVmsPinnedOneToOneOnOneCpuIsAnError) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2"}));
  machine.add_qemu(200, "db", guest(200, "0", {"2"}));
  const auto findings = with_rule(audit::run_rules(look(machine)), "shared-pcpu");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_EQ(findings[0].severity, audit::Severity::error);
  EXPECT_EQ(findings[0].cpus.to_list(), "2");
  EXPECT_EQ(findings[0].vm, "db");  // the fix moves the later VM
  EXPECT_EQ(findings[0].vms, (std::vector<std::string>{"db", "web"}));
  ASSERT_EQ(findings[0].threads.size(), 2U);
  EXPECT_EQ(findings[0].threads[0].tid, 101);
  // CPU 0 is the emulator threads', CPU 1 the first that no pinned thread may use.
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin db 0 1");
}

TEST(Audit, OneToOnePinOverlappedByAPinnedSetIsAWarning) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2"}));
  machine.add_qemu(200, "db", guest(200, "0", {"2-5"}));
  const auto findings = with_rule(audit::run_rules(look(machine)), "shared-pcpu");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_EQ(findings[0].severity, audit::Severity::warning);
  EXPECT_EQ(findings[0].vm, "db");
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin db 0 3-5");
}

TEST(Audit, VcpusOfTwoVmsOnSmtSiblings) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  // CPUs 2 and 18 are the two threads of one core.
  machine.add_qemu(100, "web", guest(100, "0", {"2"}));
  machine.add_qemu(200, "db", guest(200, "0", {"18"}));
  const auto findings = audit::run_rules(look(machine));
  const auto smt = with_rule(findings, "smt-sibling-shared");
  ASSERT_EQ(smt.size(), 1U) << all_text(findings);
  EXPECT_EQ(smt[0].severity, audit::Severity::warning);
  EXPECT_EQ(smt[0].cpus.to_list(), "2,18");
  // Core 1 (CPUs 1 and 17) is entirely free.
  EXPECT_EQ(smt[0].fix, "vcpumap vcpupin db 0 1");
  EXPECT_TRUE(with_rule(findings, "shared-pcpu").empty());
}

TEST(Audit, EmulatorThreadsAllowedOnAPinnedVcpusCpu) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0-31", {"2", "3"}));
  const auto findings = audit::run_rules(look(machine));
  const auto emulator = with_rule(findings, "emulator-on-vcpu-cpu");
  ASSERT_EQ(emulator.size(), 1U) << all_text(findings);
  EXPECT_EQ(emulator[0].cpus.to_list(), "2-3");
  EXPECT_EQ(emulator[0].vm, "web");
  EXPECT_EQ(emulator[0].fix, "vcpumap emulatorpin web 0-1,4-31");
  EXPECT_EQ(findings.size(), 1U) << all_text(findings);
}

// nova's hw:emulator_threads_policy promises the emulator threads stay off the vCPUs' CPUs.
TEST(Audit, EmulatorOnVcpuCpuBreaksNovasEmulatorThreadsPolicy) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0-31", {"2", "3"}));
  auto input = look(machine);
  configure(input, "web", {"2", "3"}, "0-31", "dedicated", "isolate");
  const auto emulator = with_rule(audit::run_rules(input), "emulator-on-vcpu-cpu");
  ASSERT_EQ(emulator.size(), 1U);
  EXPECT_EQ(emulator[0].severity, audit::Severity::error);
  EXPECT_NE(emulator[0].message.find("hw:emulator_threads_policy=isolate"), std::string::npos)
      << emulator[0].message;
}

TEST(Audit, VcpusPinnedAcrossNumaNodes) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2", "3", "8"}));  // 8 is on node 1
  const auto findings = with_rule(audit::run_rules(look(machine)), "numa-split");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_NE(findings[0].message.find("2 on node 0, 1 on node 1"), std::string::npos)
      << findings[0].message;
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin web 2 1");
}

TEST(Audit, MemoryMostlyOnAnotherNodeThanTheVcpus) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2", "3"}));
  // 2 MiB huge pages count for 512 small ones: 1024 MiB on node 1 against 40 MiB on node 0.
  machine.write(
      "proc/100/numa_maps",
      "55aa00 default file=/usr/bin/qemu mapped=10240 N0=10240 kernelpagesize_kB=4\n"
      "7f0000 bind:1 file=/dev/hugepages/qemu huge dirty=512 N1=512 kernelpagesize_kB=2048\n");
  const auto findings = with_rule(audit::run_rules(look(machine)), "numa-split");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_NE(findings[0].message.find("96% of the memory of web (1024 MiB) is on node 1"),
            std::string::npos)
      << findings[0].message;
  EXPECT_EQ(findings[0].fix, "migratepages 100 1 0");
}

TEST(Audit, VcpuPinnedToAnOfflineCpu) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kOfflines);
  // status's Cpus_allowed_list keeps a CPU that went offline after the pin.
  machine.add_qemu(100, "web", guest(100, "0", {"2", "3,5"}));
  const auto findings = with_rule(audit::run_rules(look(machine)), "offline-or-housekeeping-cpu");
  ASSERT_EQ(findings.size(), 2U) << all_text(findings);
  EXPECT_EQ(findings[0].severity, audit::Severity::error);
  EXPECT_EQ(findings[0].threads[0].vcpu, 0);
  EXPECT_EQ(findings[0].cpus.to_list(), "2");
  EXPECT_NE(findings[0].message.find("kernel ignores the pin"), std::string::npos);
  EXPECT_EQ(findings[1].threads[0].vcpu, 1);
  EXPECT_EQ(findings[1].cpus.to_list(), "5");
  EXPECT_EQ(findings[1].fix, "vcpumap vcpupin web 1 3");
}

TEST(Audit, VcpuPinnedOutsideTheIsolatedCpus) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.write("sys/devices/system/cpu/isolated", "8-15,24-31\n");
  machine.add_qemu(100, "web", guest(100, "0", {"9", "2"}));
  const auto findings = with_rule(audit::run_rules(look(machine)), "offline-or-housekeeping-cpu");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_EQ(findings[0].severity, audit::Severity::warning);
  EXPECT_EQ(findings[0].threads[0].vcpu, 1);
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin web 1 8");
}

TEST(Audit, UnpinnedVcpuMayRunOnAnotherVmsDedicatedCpu) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2"}));
  machine.add_qemu(200, "batch", guest(200, "1", {"0-31", "0-31"}));
  auto input = look(machine);
  configure(input, "batch", {"0-31", "0-31"}, "1");
  const auto findings = with_rule(audit::run_rules(input), "floating-vcpu");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_EQ(findings[0].vm, "batch");
  EXPECT_EQ(findings[0].vms, (std::vector<std::string>{"batch", "web"}));
  EXPECT_EQ(findings[0].cpus.to_list(), "2");
  EXPECT_EQ(findings[0].fix,
            "for v in 0 1; do vcpumap vcpupin batch $v 0-1,3-31 --live --config; done");
}

TEST(Audit, AffinityThatDiffersFromLibvirtsPinning) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"3", "4"}));
  auto input = look(machine);
  configure(input, "web", {"2", "4"}, "0");
  const auto findings = with_rule(audit::run_rules(input), "pin-drift");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_EQ(findings[0].severity, audit::Severity::error);
  EXPECT_EQ(findings[0].threads[0].vcpu, 0);
  EXPECT_NE(findings[0].message.find("may run on CPU 3 but libvirt configures CPU 2"),
            std::string::npos)
      << findings[0].message;
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin web 0 2 --live --config");
}

TEST(Audit, CgroupCpusetNarrowerThanTheConfiguredPinning) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  auto threads = guest(100, "0", {"2-3"});
  threads[1].cgroup = "3:cpuset:/machine/qemu-1-web.libvirt-qemu/vcpu0\n0::/\n";
  machine.write("sys/fs/cgroup/cpuset/machine/qemu-1-web.libvirt-qemu/vcpu0/cpuset.effective_cpus",
                "2\n");
  machine.add_qemu(100, "web", threads);
  auto input = look(machine);
  configure(input, "web", {"2-3"}, "0");
  const auto findings = with_rule(audit::run_rules(input), "pin-drift");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_NE(findings[0].message.find("(affinity 2-3, cgroup cpuset 2)"), std::string::npos)
      << findings[0].message;
}

TEST(Audit, NovaDedicatedVcpuThatIsNotPinnedOneToOne) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2-3"}));
  auto input = look(machine);
  configure(input, "web", {"2-3"}, "0", "dedicated");
  const auto findings = with_rule(audit::run_rules(input), "pin-drift");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_NE(findings[0].message.find("hw:cpu_policy=dedicated"), std::string::npos);
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin web 0 2 --live --config");
}

// The actual layer: a thread seen on a CPU its affinity excludes (re-pinned during the watch).
TEST(Audit, ThreadSeenRunningOutsideItsAffinity) {
  AuditMachine machine("");
  machine.add_qemu(100, "web", guest(100, "0", {"1"}));
  auto input = look(machine);
  ThreadReading later;
  later.tid = 101;
  later.facts.start_time_ticks = 1000;
  later.facts.cpu_time_ns = 5000;  // it ran since the first look
  later.facts.last_cpu = 0;
  later.facts.affinity = *CpuSet::parse_list("1");
  audit::record_sample(input.facts, {later});
  EXPECT_EQ(input.facts.threads.at(101).cpus_ran.to_list(), "0");
  const auto findings = with_rule(audit::run_rules(input), "pin-drift");
  ASSERT_EQ(findings.size(), 1U) << all_text(findings);
  EXPECT_NE(findings[0].message.find("seen running on CPU 0 outside its affinity 1"),
            std::string::npos);
  // A thread whose CPU time did not grow did not run: its stale last CPU proves nothing.
  later.facts.last_cpu = 1;
  audit::record_sample(input.facts, {later});
  EXPECT_EQ(input.facts.threads.at(101).cpus_ran.to_list(), "0");
}

TEST(Audit, NamedVmsSelectTheFindingsThatInvolveThem) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2"}));
  machine.add_qemu(200, "db", guest(200, "0", {"2"}));
  machine.add_qemu(300, "other", guest(300, "1", {"5"}));
  const auto findings = audit::run_rules(look(machine));
  EXPECT_EQ(audit::involving(findings, {100}).size(), 1U) << all_text(findings);
  EXPECT_TRUE(audit::involving(findings, {300}).empty());
  EXPECT_TRUE(audit::any_at_or_above(findings, audit::Severity::error));
}

TEST(Audit, JsonHasTheDocumentedKeys) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.add_qemu(100, "web", guest(100, "0", {"2"}));
  machine.add_qemu(200, "db", guest(200, "0", {"2"}));
  const auto document =
      nlohmann::json::parse(views::dump_json(views::audit_json(audit::run_rules(look(machine)))));
  ASSERT_EQ(document["findings"].size(), 1U);
  const auto& finding = document["findings"][0];
  for (const char* key : {"rule", "severity", "vm", "threads", "cpus", "message", "fix"}) {
    EXPECT_TRUE(finding.contains(key)) << key;
  }
  EXPECT_EQ(finding["rule"], "shared-pcpu");
  EXPECT_EQ(finding["severity"], "error");
  EXPECT_EQ(finding["cpus"], nlohmann::json::array({2}));
  EXPECT_EQ(finding["threads"][0]["vcpu"], 0);
  EXPECT_EQ(finding["threads"][0]["role"], "vcpu");
}

TEST(AuditSeverity, ParsesTheThreeWords) {
  EXPECT_EQ(audit::parse_severity("warning"), audit::Severity::warning);
  EXPECT_FALSE(audit::parse_severity("fatal").has_value());
}

}  // namespace
}  // namespace vcpumap
