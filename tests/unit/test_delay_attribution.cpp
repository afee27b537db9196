// The classification of the kernel's (waiter, culprit) totals (collect/delay.h): what each culprit
// is to the VMs, how the schedstat delta bounds the split, and the JSON `delay --json` prints.
#include <gtest/gtest.h>

#include "collect/delay.h"
#include "views/delay_view.h"
#include "views/top_view.h"

namespace vcpumap {
namespace {

VmThread thread(int tid, ThreadRole role, int vcpu = -1, std::string iothread = {}) {
  VmThread out;
  out.tid = tid;
  out.role = role;
  out.vcpu = vcpu;
  out.iothread = std::move(iothread);
  return out;
}

Snapshot two_vms() {
  Snapshot snapshot;
  Vm web;
  web.pid = 100;
  web.name = "web";
  web.threads = {thread(101, ThreadRole::vcpu, 0), thread(102, ThreadRole::vcpu, 1),
                 thread(103, ThreadRole::iothread, -1, "io1"),
                 thread(100, ThreadRole::emulator_main)};
  Vm db;
  db.pid = 200;
  db.name = "db";
  db.threads = {thread(201, ThreadRole::vcpu, 0), thread(202, ThreadRole::vhost)};
  snapshot.vms = {web, db};
  return snapshot;
}

bpf::DelayPair pair(int waiter, int tgid, int tid, std::uint64_t ns, std::string comm = {},
                    bool kernel = false) {
  return {waiter, tgid, tid, ns, kernel, std::move(comm)};
}

TEST(DelayAttribution, EachCulpritIsWhatItIsToTheVms) {
  const auto snapshot = two_vms();
  const std::vector<bpf::DelayPair> pairs = {
      pair(101, 200, 201, 400),
      pair(101, 100, 102, 300),
      pair(101, 100, 103, 200),
      pair(101, 100, 100, 100),
      pair(101, 5000, 5001, 50, "spin"),
      pair(101, 5000, 5002, 30, "spin"),  // another thread of the same host process: one culprit
      pair(101, 0, 0, 20, "swapper/1", true),
      pair(101, 202, 202, 10, "vhost-200", true),
      pair(201, 100, 101, 999)};  // another waiter's: not web vCPU 0's
  const RunDelays before = {{101, 1000}}, after = {{101, 2110}};
  const auto report =
      attribute_delay(snapshot, {&snapshot.vms[0]}, pairs, before, after, std::chrono::seconds(1));
  ASSERT_EQ(report.vms.size(), 1U);
  ASSERT_EQ(report.vms[0].vcpus.size(), 2U);
  const auto& vcpu = report.vms[0].vcpus[0];
  EXPECT_EQ(vcpu.tid, 101);
  EXPECT_EQ(vcpu.run_delay_ns, 1110U);
  EXPECT_EQ(vcpu.attributed_ns, 1110U);
  EXPECT_TRUE(vcpu.mismatch.empty());
  ASSERT_EQ(vcpu.behind.size(), 7U);
  EXPECT_EQ(vcpu.behind[0].kind, CulpritKind::vcpu);
  EXPECT_EQ(vcpu.behind[0].vm, "db");
  EXPECT_EQ(vcpu.behind[0].pid, 200);
  EXPECT_EQ(vcpu.behind[0].vcpu, 0);
  EXPECT_EQ(vcpu.behind[1].kind, CulpritKind::vcpu);  // its own VM's other vCPU
  EXPECT_EQ(vcpu.behind[1].vcpu, 1);
  EXPECT_EQ(vcpu.behind[2].kind, CulpritKind::iothread);
  EXPECT_EQ(vcpu.behind[2].iothread, "io1");
  EXPECT_EQ(vcpu.behind[3].kind, CulpritKind::emulator);
  EXPECT_EQ(vcpu.behind[3].tid, 100);
  EXPECT_EQ(vcpu.behind[4].kind, CulpritKind::host);
  EXPECT_EQ(vcpu.behind[4].comm, "spin");
  EXPECT_EQ(vcpu.behind[4].pid, 5000);
  EXPECT_EQ(vcpu.behind[4].ns, 80U);
  EXPECT_EQ(vcpu.behind[5].kind, CulpritKind::kernel);
  EXPECT_EQ(vcpu.behind[5].comm, "swapper/1");
  EXPECT_EQ(vcpu.behind[6].kind, CulpritKind::kernel);  // a VM's vhost worker is a kernel thread
  EXPECT_EQ(vcpu.behind[6].comm, "vhost-200");
  // vCPU 1 was not read at both ends: its delay is unknown, not 0, and nothing is made up.
  EXPECT_FALSE(report.vms[0].vcpus[1].run_delay_ns.has_value());
  EXPECT_TRUE(report.vms[0].vcpus[1].behind.empty());
}

TEST(DelayAttribution, TheUnattributedRestIsOtherAndAMismatchIsSaid) {
  const auto snapshot = two_vms();
  const std::vector<bpf::DelayPair> pairs = {pair(101, 200, 201, 60'000'000)};
  const auto report = attribute_delay(snapshot, {&snapshot.vms[0]}, pairs, {{101, 0}},
                                      {{101, 100'000'000}}, std::chrono::seconds(1));
  const auto& vcpu = report.vms[0].vcpus[0];
  ASSERT_EQ(vcpu.behind.size(), 2U);
  EXPECT_EQ(vcpu.behind[0].ns, 60'000'000U);
  EXPECT_EQ(vcpu.behind[1].kind, CulpritKind::other);
  EXPECT_EQ(vcpu.behind[1].ns, 40'000'000U);
  EXPECT_NE(vcpu.mismatch.find("40.0 ms of it is in `other`"), std::string::npos) << vcpu.mismatch;

  const auto json = views::delay_json(report);
  const auto& row = json["vms"][0]["vcpus"][0];
  EXPECT_EQ(row["run_delay_ns"], 100'000'000U);
  EXPECT_EQ(row["behind"][0]["kind"], "vcpu");
  EXPECT_EQ(row["behind"][0]["vm"], "db");
  EXPECT_EQ(row["behind"][1]["kind"], "other");
  EXPECT_TRUE(row["ran_beside"].is_null());
  EXPECT_TRUE(json["vms"][0]["vcpus"][1]["run_delay_ns"].is_null());
}

TEST(DelayAttribution, AProcessTheEngineCouldNotNameHasNoPidNotPidZero) {
  // The perf fallback reads a culprit's tgid from /proc: a task gone before that has tgid 0,
  // which is the idle task's only for tid 0.
  const auto snapshot = two_vms();
  const std::vector<bpf::DelayPair> pairs = {pair(101, 0, 7001, 600, "make"),
                                             pair(101, 0, 0, 400, "swapper/0", true)};
  const auto report = attribute_delay(snapshot, {&snapshot.vms[0]}, pairs, {{101, 0}},
                                      {{101, 1000}}, std::chrono::seconds(1));
  const auto& vcpu = report.vms[0].vcpus[0];
  ASSERT_EQ(vcpu.behind.size(), 2U);
  EXPECT_FALSE(vcpu.behind[0].pid.has_value());
  EXPECT_EQ(views::culprit_text(vcpu.behind[0]), "make (pid n/a)");
  EXPECT_EQ(vcpu.behind[1].pid, 0);
  EXPECT_EQ(views::culprit_text(vcpu.behind[1]), "swapper/0 (pid 0)");
  const auto json = views::delay_json(report)["vms"][0]["vcpus"][0]["behind"];
  EXPECT_TRUE(json[0]["pid"].is_null());
  EXPECT_EQ(json[1]["pid"], 0);
}

TEST(DelayAttribution, WithinFivePercentIsNoMismatch) {
  const auto snapshot = two_vms();
  const auto report =
      attribute_delay(snapshot, {&snapshot.vms[0]}, {pair(101, 200, 201, 104'000'000)}, {{101, 0}},
                      {{101, 100'000'000}}, std::chrono::seconds(1));
  const auto& vcpu = report.vms[0].vcpus[0];
  EXPECT_TRUE(vcpu.mismatch.empty());
  ASSERT_EQ(vcpu.behind.size(), 1U);  // more split than delta: no `other`
}

TEST(DelayAttribution, RanBesideIsWhatRanOnTheSiblingByWhatItIsToTheVms) {
  const auto snapshot = two_vms();
  const std::vector<bpf::DelayPair> beside = {pair(101, 200, 201, 700), pair(101, 100, 103, 9),
                                              pair(201, 100, 101, 700)};
  const auto report = attribute_delay(snapshot, {&snapshot.vms[0], &snapshot.vms[1]}, {},
                                      {{101, 0}}, {{101, 0}}, std::chrono::seconds(1), beside);
  const auto& web0 = report.vms[0].vcpus[0];
  ASSERT_TRUE(web0.ran_beside.has_value());
  ASSERT_EQ(web0.ran_beside->size(), 2U);
  EXPECT_EQ((*web0.ran_beside)[0].kind, CulpritKind::vcpu);
  EXPECT_EQ((*web0.ran_beside)[0].vm, "db");
  EXPECT_EQ((*web0.ran_beside)[0].ns, 700U);
  EXPECT_EQ((*web0.ran_beside)[1].kind, CulpritKind::iothread);
  EXPECT_TRUE(report.vms[0].vcpus[1].ran_beside->empty());  // measured: nothing, not unknown
  EXPECT_EQ((*report.vms[1].vcpus[0].ran_beside)[0].vm, "web");
  const auto json = views::delay_json(report);
  EXPECT_EQ(json["vms"][0]["vcpus"][0]["ran_beside"][0]["kind"], "vcpu");
  EXPECT_EQ(json["vms"][0]["vcpus"][0]["ran_beside"][0]["ns"], 700U);
  EXPECT_TRUE(json["vms"][0]["vcpus"][1]["ran_beside"].is_array());
  EXPECT_TRUE(json["ran_beside_unavailable"].is_null());

  // Not measured (no SMT): null, and the report says why.
  auto unmeasured = attribute_delay(snapshot, {&snapshot.vms[0]}, {}, {{101, 0}}, {{101, 0}},
                                    std::chrono::seconds(1));
  unmeasured.ran_beside_why = ran_beside_unmeasured({{}, {}});
  const auto none = views::delay_json(unmeasured);
  EXPECT_TRUE(none["vms"][0]["vcpus"][0]["ran_beside"].is_null());
  EXPECT_NE(none["ran_beside_unavailable"].get<std::string>().find("no SMT"), std::string::npos);
  EXPECT_NE(
      views::render_delay_text(unmeasured).find("ran beside (SMT): n/a: this host has no SMT"),
      std::string::npos);
}

TEST(DelayAttribution, AnIntervalIsTheTotalsLessThoseOfTheReadBefore) {
  const std::vector<bpf::DelayPair> before = {pair(101, 200, 201, 400), pair(101, 5000, 5001, 50)};
  const std::vector<bpf::DelayPair> now = {pair(101, 200, 201, 700), pair(101, 5000, 5001, 50),
                                           pair(102, 0, 0, 20, "swapper/0", true)};
  const auto added = subtract_pairs(now, before);
  ASSERT_EQ(added.size(), 2U);  // the spinner added nothing: left out
  EXPECT_EQ(added[0].culprit_tid, 201);
  EXPECT_EQ(added[0].ns, 300U);
  EXPECT_EQ(added[1].waiter_tid, 102);  // new since: all of it
  EXPECT_EQ(added[1].ns, 20U);
  EXPECT_TRUE(added[1].culprit_kernel_thread);
}

TEST(DelayAttribution, TopsCellIsTheLargestCulpritAndItsShare) {
  const auto snapshot = two_vms();
  const auto report =
      attribute_delay(snapshot, {&snapshot.vms[0]},
                      {pair(101, 5000, 5001, 75, "a-long-spinner-name"), pair(101, 200, 201, 25)},
                      {{101, 0}}, {{101, 100}}, std::chrono::seconds(1));
  EXPECT_EQ(views::waited_behind_cell(&report, 101), "a-long-spin  75%");
  EXPECT_EQ(views::waited_behind_cell(&report, 102), "n/a");  // its delay is unknown
  EXPECT_EQ(views::waited_behind_cell(nullptr, 101), "n/a");  // no split without BPF
  const auto idle = attribute_delay(snapshot, {&snapshot.vms[0]}, {}, {{101, 5}}, {{101, 5}},
                                    std::chrono::seconds(1));
  EXPECT_EQ(views::waited_behind_cell(&idle, 101), "-");  // it did not wait
  EXPECT_EQ(views::culprit_label(report.vms[0].vcpus[0].behind[1]), "db:vcpu0");
}

}  // namespace
}  // namespace vcpumap
