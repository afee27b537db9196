// Every audit finding that has a fix gives it, also where no CPU is free: each fix is applied to
// the fixture's threads as its commands would and the audit run again, or, where a fix re-applies
// what was observed, its exact targets are checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>

#include "audit/audit.h"
#include "audit_fixture.h"

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

// Fake guests whose threads a fix can move: the commands audit gives (`vcpumap vcpupin VM N
// CPUS`, its `for v in ...` loop, `vcpumap emulatorpin VM CPUS`, `taskset -pc CPUS TID`, joined by
// &&) are applied to the threads' affinities as the commands would, and the files written again.
class Guests {
 public:
  explicit Guests(AuditMachine& machine) : machine_(machine) {}

  void add(int pid, const std::string& name, std::vector<AuditThread> threads) {
    guests_[name] = {pid, std::move(threads)};
    write(name);
  }

  void apply(const std::string& fix) {
    const std::regex vcpupin(R"(vcpumap vcpupin (\S+) (\d+) (\S+)( --live --config)?)");
    const std::regex loop(R"(for v in ([\d ]+); do vcpumap vcpupin (\S+) \$v (\S+)(.*); done)");
    const std::regex emulatorpin(R"(vcpumap emulatorpin (\S+) (\S+)( --live)?( --config)?)");
    const std::regex taskset(R"(taskset -pc (\S+) (\d+))");
    std::smatch m;
    std::string rest = fix;
    ASSERT_FALSE(rest.empty()) << "no fix to apply";
    while (!rest.empty()) {
      const auto end = rest.find(" && ");
      const auto command = rest.substr(0, end);
      rest = end == std::string::npos ? "" : rest.substr(end + 4);
      if (std::regex_match(command, m, vcpupin)) {
        set(
            m[1], [&](const AuditThread& t) { return t.name == "CPU " + m[2].str() + "/KVM"; },
            m[3]);
      } else if (std::regex_match(command, m, loop)) {
        std::istringstream vcpus(m[1].str());
        for (std::string v; vcpus >> v;) {
          set(
              m[2], [&](const AuditThread& t) { return t.name == "CPU " + v + "/KVM"; }, m[3]);
        }
      } else if (std::regex_match(command, m, emulatorpin)) {
        set(
            m[1], [](const AuditThread& t) { return !t.name.starts_with("CPU "); }, m[2]);
      } else if (std::regex_match(command, m, taskset)) {
        for (auto& [name, guest] : guests_) {
          set(
              name, [&](const AuditThread& t) { return t.tid == std::stoi(m[2]); }, m[1]);
        }
      } else {
        FAIL() << "not a command this test applies: " << command;
      }
    }
  }

 private:
  template <typename Match>
  void set(const std::string& name, Match match, const std::string& cpus) {
    auto& threads = guests_.at(name).second;
    for (auto& thread : threads) {
      if (match(thread)) thread.affinity = cpus;
    }
    write(name);
  }

  void write(const std::string& name) {
    const auto& [pid, threads] = guests_.at(name);
    machine_.add_qemu(pid, name, threads);
  }

  AuditMachine& machine_;
  std::map<std::string, std::pair<int, std::vector<AuditThread>>> guests_;
};

// The one finding of `rule` for `vm` (a test failure when there is not exactly one).
audit::Finding only(const std::vector<audit::Finding>& findings, const std::string& rule,
                    const std::string& vm) {
  std::vector<audit::Finding> kept;
  for (const auto& finding : with_rule(findings, rule)) {
    if (finding.vm == vm) kept.push_back(finding);
  }
  EXPECT_EQ(kept.size(), 1U) << all_text(findings);
  return kept.empty() ? audit::Finding{} : kept.front();
}

bool has(const std::vector<audit::Finding>& findings, const std::string& rule,
         const std::string& vm) {
  return std::any_of(findings.begin(), findings.end(), [&](const audit::Finding& finding) {
    return finding.rule == rule && finding.vm == vm;
  });
}

// The finding of `rule` for `vm` gives `fix` and says `says` (its trade-off); once the fix is
// applied the audit finds no such finding. Gives the findings after.
std::vector<audit::Finding> expect_fix_resolves(const AuditMachine& machine, Guests& guests,
                                                const std::string& rule, const std::string& vm,
                                                const std::string& fix, const std::string& says) {
  const auto finding = only(audit::run_rules(look(machine)), rule, vm);
  EXPECT_EQ(finding.fix, fix);
  EXPECT_NE(finding.message.find(says), std::string::npos) << finding.message;
  guests.apply(finding.fix);
  auto after = audit::run_rules(look(machine));
  EXPECT_FALSE(has(after, rule, vm)) << all_text(after);
  return after;
}

// Every host CPU held by a vCPU pinned to it alone (2-CPU host): batch's unpinned vCPU can only
// be confined to its own VM's dedicated CPU.
TEST(AuditFix, FloatingVcpuWithNoFreeCpuGoesToItsOwnVmsCpu) {
  AuditMachine machine("");
  Guests guests(machine);
  guests.add(100, "web", guest(100, "0", {"0"}));
  guests.add(200, "batch", guest(200, "1", {"1", "0-1"}));
  expect_fix_resolves(machine, guests, "floating-vcpu", "batch", "vcpumap vcpupin batch 1 1",
                      "held by this VM's own vCPUs");
}

// Nothing of its own either: narrowed to two CPUs, where it ran last first, so it takes from two
// vCPUs instead of every VM's (a warning; one CPU would make an error of two VMs pinned to it).
TEST(AuditFix, FloatingVcpuWithNothingOfItsOwnIsNarrowedToTwoCpus) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  Guests guests(machine);
  std::vector<std::string> low, high;
  for (int cpu = 0; cpu < 16; ++cpu) {
    low.push_back(std::to_string(cpu));
    high.push_back(std::to_string(cpu + 16));
  }
  guests.add(100, "web", guest(100, "0-31", low));
  guests.add(200, "db", guest(200, "0-31", high));
  auto batch = guest(300, "0-31", {"0-31"});
  batch[1].cpu = 5;
  guests.add(300, "batch", batch);
  const auto after =
      expect_fix_resolves(machine, guests, "floating-vcpu", "batch", "vcpumap vcpupin batch 0 0,5",
                          "takes time from those vCPUs only");
  EXPECT_FALSE(audit::any_at_or_above(after, audit::Severity::error)) << all_text(after);
}

// On two CPUs both held by other VMs, nothing narrows it: no fix, and the text says why.
TEST(AuditFix, FloatingVcpuOnAFullTwoCpuHostHasNoFixAndSaysWhy) {
  AuditMachine machine("");
  machine.add_qemu(100, "web", guest(100, "0", {"0"}));
  machine.add_qemu(200, "db", guest(200, "1", {"1"}));
  machine.add_qemu(300, "batch", guest(300, "0-1", {"0-1"}));
  const auto floating = only(audit::run_rules(look(machine)), "floating-vcpu", "batch");
  EXPECT_EQ(floating.fix, "");
  EXPECT_NE(floating.message.find("too few CPUs to narrow it"), std::string::npos)
      << floating.message;
}

TEST(AuditFix, EmulatorWithNoFreeCpuStaysOnItsOwnVcpusCpus) {
  AuditMachine machine("");
  Guests guests(machine);
  guests.add(100, "web", guest(100, "0-1", {"0"}));
  guests.add(200, "db", guest(200, "1", {"1"}));
  const auto findings = audit::run_rules(look(machine));
  const auto web = only(findings, "emulator-on-vcpu-cpu", "web");
  EXPECT_EQ(web.fix, "vcpumap emulatorpin web 0");
  EXPECT_NE(web.message.find("this VM's own vCPUs"), std::string::npos) << web.message;
  // db's emulator already shares only its own vCPU's CPU: nothing better, and it says why.
  const auto db = only(findings, "emulator-on-vcpu-cpu", "db");
  EXPECT_EQ(db.fix, "");
  EXPECT_NE(db.message.find("no better pinning can be given"), std::string::npos) << db.message;
  guests.apply(web.fix);
  const auto after = only(audit::run_rules(look(machine)), "emulator-on-vcpu-cpu", "web");
  EXPECT_EQ(after.vms, (std::vector<std::string>{"web"}));  // db's vCPU is left alone
  EXPECT_EQ(after.fix, "");
}

TEST(AuditFix, EmulatorGoesToHousekeepingCpusWhenTheHostIsolatesSome) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.write("sys/devices/system/cpu/isolated", "8-15,24-31\n");
  machine.add_qemu(100, "web", guest(100, "0-31", {"9", "10"}));
  const auto emulator = only(audit::run_rules(look(machine)), "emulator-on-vcpu-cpu", "web");
  EXPECT_EQ(emulator.fix, "vcpumap emulatorpin web 0-7,16-23");
}

// A filler VM whose emulator threads may use every CPU but `spare`: no CPU outside it is free.
std::vector<AuditThread> filler(int pid, const std::string& spare_out) {
  return {{.tid = pid, .name = "qemu-system-x86", .affinity = spare_out}};
}

TEST(AuditFix, SmtSiblingsWithNoFreeCoreMoveToAnotherCoresCpu) {
  SKIP_WITHOUT_SHARED();
  {
    // CPU 17 is free, its sibling 1 is not: no whole core is free.
    AuditMachine machine(kTwoSocketNuma);
    Guests guests(machine);
    guests.add(100, "web", guest(100, "0", {"2"}));
    guests.add(200, "db", guest(200, "0", {"18"}));
    guests.add(300, "fill", filler(300, "0-1,3-16,19-31"));
    expect_fix_resolves(machine, guests, "smt-sibling-shared", "db", "vcpumap vcpupin db 0 17",
                        "siblings may still be busy");
  }
  // No CPU free at all: one that no vCPU holds alone, overlapping a pinned set.
  AuditMachine machine(kTwoSocketNuma);
  Guests guests(machine);
  guests.add(100, "web", guest(100, "0", {"2"}));
  guests.add(200, "db", guest(200, "0", {"18"}));
  guests.add(300, "fill", filler(300, "0-1,3-17,19-31"));
  const auto after =
      expect_fix_resolves(machine, guests, "smt-sibling-shared", "db", "vcpumap vcpupin db 0 0",
                          "a lesser sharing than a sibling");
  EXPECT_FALSE(audit::any_at_or_above(after, audit::Severity::error)) << all_text(after);
}

TEST(AuditFix, VcpuPinnedOnlyToAnOfflineCpuWithNoFreeCpu) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kOfflines);  // online: 0-1,3-4,6-12,15
  Guests guests(machine);
  auto web = guest(100, "15", {"2"});
  web[1].cpu = 3;  // the kernel ignores the pin and runs it where it likes
  guests.add(100, "web", web);
  guests.add(200, "db", guest(200, "0-1,3-4,6-12", {"15"}));
  expect_fix_resolves(machine, guests, "offline-or-housekeeping-cpu", "web",
                      "vcpumap vcpupin web 0 3", "which it shares with them");
}

TEST(AuditFix, VcpuOnAHousekeepingCpuWithNoFreeIsolatedCpuDropsIt) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  machine.write("sys/devices/system/cpu/isolated", "8-15,24-31\n");
  Guests guests(machine);
  guests.add(100, "web", guest(100, "0", {"2,9"}));
  guests.add(200, "fill", filler(200, "8-15,24-31"));
  expect_fix_resolves(machine, guests, "offline-or-housekeeping-cpu", "web",
                      "vcpumap vcpupin web 0 9", "");
}

TEST(AuditFix, NumaSplitWithTooFewFreeCpusSharesTheHomeNode) {
  SKIP_WITHOUT_SHARED();
  AuditMachine machine(kTwoSocketNuma);
  Guests guests(machine);
  guests.add(100, "web", guest(100, "8", {"2", "3", "8"}));  // 8 is on node 1
  guests.add(200, "fill", filler(200, "0-1,4-7,16-23"));     // the rest of node 0
  expect_fix_resolves(machine, guests, "numa-split", "web", "vcpumap vcpupin web 2 0-1,4-7,16-23",
                      "");
}

TEST(AuditFix, NovaDedicatedVcpuWithNoFreeCpuGetsOneItShares) {
  AuditMachine machine("");
  machine.add_qemu(100, "web", guest(100, "0-1", {"0-1"}));
  machine.add_qemu(200, "db", guest(200, "1", {"0"}));
  auto input = look(machine);
  configure(input, "web", {"0-1"}, "0-1", "dedicated");
  const auto drift = only(audit::run_rules(input), "pin-drift", "web");
  EXPECT_EQ(drift.fix, "vcpumap vcpupin web 0 1 --live --config");
  EXPECT_NE(drift.message.find("gives it one it shares"), std::string::npos) << drift.message;
}

// Seen outside its affinity: the fix re-applies the configured pinning, else the affinity of now.
TEST(AuditFix, ThreadSeenOutsideItsAffinityGetsItsPinningReapplied) {
  AuditMachine machine("");
  machine.add_qemu(100, "web", guest(100, "1", {"1"}));
  auto input = look(machine);
  const auto seen_on_0 = [](int tid) {
    ThreadReading later;
    later.tid = tid;
    later.facts.start_time_ticks = 1000;
    later.facts.cpu_time_ns = 5000;
    later.facts.last_cpu = 0;
    later.facts.affinity = *CpuSet::parse_list("1");
    return later;
  };
  audit::record_sample(input.facts, {seen_on_0(100), seen_on_0(101)});
  // vCPUs come first.
  auto findings = with_rule(audit::run_rules(input), "pin-drift");
  ASSERT_EQ(findings.size(), 2U) << all_text(findings);
  EXPECT_EQ(findings[1].threads[0].tid, 100);
  EXPECT_EQ(findings[1].fix, "taskset -pc 1 100");
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin web 0 1");
  EXPECT_NE(findings[0].message.find("re-applies the affinity it has now (1)"), std::string::npos)
      << findings[0].message;
  configure(input, "web", {"1"}, "1");
  findings = with_rule(audit::run_rules(input), "pin-drift");
  ASSERT_EQ(findings.size(), 2U) << all_text(findings);
  EXPECT_EQ(findings[1].fix, "vcpumap emulatorpin web 1 --live");
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin web 0 1 --live --config");
  EXPECT_NE(findings[0].message.find("libvirt's configured pinning, CPU 1"), std::string::npos)
      << findings[0].message;
}

}  // namespace
}  // namespace vcpumap
