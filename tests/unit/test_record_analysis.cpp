// The analysis of recordings made in memory: residency, migrations and what they crossed,
// longest stay, run delay, lost events and the timeline, in both modes.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include "fixture_tree.h"

#include "record/analysis.h"
#include "views/report_html.h"
#include "views/report_text.h"

namespace vcpumap::record {
namespace {

constexpr std::uint64_t kMs = 1'000'000;

using vcpumap::testing::make_cpu;

// Two cores of one package, one NUMA node each.
HostBlock two_cpu_host(Mode mode) {
  HostBlock host;
  host.mode = mode;
  host.interval_ns = 100 * kMs;
  host.topology.cpus.push_back(make_cpu(0, 0, 0, 0));
  host.topology.cpus.push_back(make_cpu(1, 1, 0, 1));
  return host;
}

IdentityBlock one_vm_two_vcpus() {
  IdentityBlock identity;
  identity.vms.push_back({0, 500, "web", "", Hypervisor::qemu});
  identity.threads.push_back({0, 0, 501, "CPU 0/KVM", ThreadRole::vcpu, 0, "", 1, "1"});
  identity.threads.push_back({1, 0, 502, "CPU 1/KVM", ThreadRole::vcpu, 1, "", 1, "0-1"});
  return identity;
}

TEST(RecordAnalysis, SampledPinnedAndFlippingVcpus) {
  const HostBlock host = two_cpu_host(Mode::sampled);
  SampleBlock samples;
  // vCPU 0 stays on CPU 1 and runs half the time; vCPU 1 alternates CPUs every sample, and the
  // kernel's counter says it moved once each time.
  for (int i = 0; i <= 10; ++i) {
    SampleRecord sample;
    sample.time_ns = std::uint64_t(i) * 100 * kMs;
    sample.threads.push_back({0, 1, 'R', i * 50 * kMs, i * 10 * kMs, 3});
    sample.threads.push_back({1, i % 2, 'R', i * 100 * kMs, 0, std::uint64_t(20 + i)});
    samples.samples.push_back(sample);
  }
  Analyzer analyzer(host, 1000 * kMs, {});
  analyzer.add(host);
  analyzer.add(one_vm_two_vcpus());
  analyzer.add(samples);
  const Report report = analyzer.finish();
  ASSERT_EQ(report.vms.size(), 1u);
  ASSERT_EQ(report.vms[0].vcpus.size(), 2u);
  const auto& pinned = report.vms[0].vcpus[0];
  EXPECT_EQ(pinned.migrations, 0u);
  EXPECT_EQ(pinned.migrations_source, MigrationSource::nr_migrations);
  EXPECT_EQ(pinned.residency(report.cpus), (std::map<int, double>{{1, 1.0}}));
  EXPECT_EQ(pinned.longest_stay_ns, 1000 * kMs);
  EXPECT_EQ(pinned.longest_stay_cpu, 1);
  EXPECT_EQ(pinned.run_delay_ns, 100 * kMs);
  const auto& flipping = report.vms[0].vcpus[1];
  EXPECT_EQ(flipping.migrations, 10u);
  EXPECT_EQ(flipping.crossed_core, 10u);
  EXPECT_EQ(flipping.crossed_node, 10u);
  EXPECT_EQ(flipping.crossed_package, 0u);
  const auto shares = flipping.residency(report.cpus);
  EXPECT_NEAR(shares.at(0), 0.5, 1e-9);
  EXPECT_NEAR(shares.at(1), 0.5, 1e-9);
  EXPECT_EQ(report.samples, 11u);

  // The timeline shows vCPU 1 (key 1) busy on both CPUs and vCPU 0 on CPU 1.
  std::uint64_t on_cpu1_key0 = 0;
  for (const auto& bucket : report.timeline.cells) {
    for (const auto& cell : bucket[1]) on_cpu1_key0 += cell.key == 0 ? cell.ns : 0;
  }
  EXPECT_EQ(on_cpu1_key0, 500 * kMs);
}

TEST(RecordAnalysis, ExactFromSwitchesMigrationsAndWakeups) {
  const HostBlock host = two_cpu_host(Mode::exact);
  SampleBlock start;
  start.samples.push_back({0, {{0, 0, 'R', 0, 0, 0}, {1, 1, 'S', 0, 0, 0}}});
  EventBlock events;
  auto add = [&](EventKind kind, std::uint64_t ms, std::uint32_t key, int cpu, char state = 'R',
                 int orig = -1) {
    events.events.push_back({kind, ms * kMs, key, cpu, orig, state, 0, {}, false});
  };
  add(EventKind::switch_in, 0, 0, 0);
  add(EventKind::switch_out, 10, 0, 0, 'R');  // preempted: waits 5 ms
  add(EventKind::switch_in, 15, 0, 0);
  add(EventKind::switch_out, 30, 0, 0, 'S');
  add(EventKind::migrate, 40, 0, 1, 'R', 0);
  add(EventKind::wakeup, 40, 0, 1);  // waits 5 ms on CPU 1
  add(EventKind::switch_in, 45, 0, 1);
  add(EventKind::switch_out, 60, 0, 1, 'S');
  events.events.push_back({EventKind::lost, 70 * kMs, 0, 1, -1, 'R', 7, {}, false});
  Analyzer analyzer(host, 100 * kMs, {});
  analyzer.add(host);
  analyzer.add(one_vm_two_vcpus());
  analyzer.add(start);
  analyzer.add(events);
  const Report report = analyzer.finish();
  const auto& vcpu = report.vms[0].vcpus[0];
  EXPECT_EQ(vcpu.on_cpu_ns, 40 * kMs);
  EXPECT_EQ(vcpu.residency_ns[0], 25 * kMs);
  EXPECT_EQ(vcpu.residency_ns[1], 15 * kMs);
  EXPECT_EQ(vcpu.migrations, 1u);
  EXPECT_EQ(vcpu.migrations_source, MigrationSource::tracepoint);
  EXPECT_EQ(vcpu.crossed_core, 1u);
  EXPECT_EQ(vcpu.run_delay_ns, 10 * kMs);
  EXPECT_EQ(vcpu.longest_stay_ns, 60 * kMs);
  EXPECT_EQ(vcpu.longest_stay_cpu, 1);
  EXPECT_EQ(report.lost_events, 7u);
  EXPECT_EQ(report.lost_by_cpu.at(1), 7u);
  // vCPU 1 had no event: it stayed on CPU 1, never moved.
  const auto& quiet = report.vms[0].vcpus[1];
  EXPECT_EQ(quiet.migrations, 0u);
  EXPECT_EQ(quiet.longest_stay_cpu, 1);
  EXPECT_EQ(quiet.residency(report.cpus), (std::map<int, double>{{1, 1.0}}));

  // A first event that is a switch-out means it was running since time 0.
  Analyzer running(host, 100 * kMs, {});
  running.add(host);
  running.add(one_vm_two_vcpus());
  running.add(EventBlock{{{EventKind::switch_out, 20 * kMs, 1, 1, -1, 'S', 0, {}, false}}});
  EXPECT_EQ(running.finish().vms[0].vcpus[1].on_cpu_ns, 20 * kMs);
}

TEST(RecordAnalysis, ViewsNameTheVcpusAndHoldTheParts) {
  const HostBlock host = two_cpu_host(Mode::exact);
  Analyzer analyzer(host, 100 * kMs, {});
  analyzer.add(host);
  analyzer.add(one_vm_two_vcpus());
  analyzer.add(EventBlock{{{EventKind::switch_in, 0, 0, 1, -1, 'R', 0, {}, false},
                           {EventKind::switch_out, 90 * kMs, 0, 1, -1, 'S', 0, {}, false}}});
  const Report report = analyzer.finish();
  const std::string timeline = views::render_report_timeline(report, 5);
  EXPECT_NE(timeline.find("A0"), std::string::npos) << timeline;
  EXPECT_NE(timeline.find("A = web"), std::string::npos) << timeline;
  const auto json = views::report_json(report);
  EXPECT_EQ(json["mode"], "exact");
  EXPECT_EQ(json["vms"][0]["vcpus"][0]["residency"]["1"], 1.0);
  const std::string html = views::render_report_html(report, "t <&>");
  EXPECT_NE(html.find("id=\"timeline-cpu\""), std::string::npos);
  EXPECT_NE(html.find("id=\"heatmap\""), std::string::npos);
  EXPECT_NE(html.find("t &lt;&amp;&gt;"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no assets
}

// Six vCPUs sharing one host CPU in every column: the CPU lane draws the three with the most
// time and one grey "other vCPUs" part per column, not six rectangles.
TEST(RecordAnalysis, CrowdedCpuLaneStacksAtMostFourParts) {
  HostBlock host = two_cpu_host(Mode::sampled);
  Analyzer analyzer(host, 1000 * kMs, {});
  analyzer.add(host);
  IdentityBlock identity;
  identity.vms.push_back({0, 500, "crowd", "", Hypervisor::qemu});
  for (std::uint32_t v = 0; v < 6; ++v) {
    identity.threads.push_back(
        {v, 0, 501 + int(v), fmt::format("CPU {}/KVM", v), ThreadRole::vcpu, int(v), "", 1, "0"});
  }
  analyzer.add(identity);
  SampleBlock samples;
  for (std::uint64_t i = 0; i <= 10; ++i) {
    SampleRecord sample{i * 100 * kMs, {}};
    // vCPU v runs (v + 1) / 21 of the time: all six fill CPU 0.
    for (std::uint32_t v = 0; v < 6; ++v) {
      sample.threads.push_back({v, 0, 'R', i * 100 * kMs * (v + 1) / 21, 0, 0});
    }
    samples.samples.push_back(sample);
  }
  analyzer.add(samples);
  const std::string html = views::render_report_html(analyzer.finish(), "crowd", 1);
  const auto cpu_lanes = html.substr(html.find("id=\"timeline-cpu\""));
  const auto lane_0 = cpu_lanes.substr(0, cpu_lanes.find("</svg>"));
  std::size_t bars = 0;
  for (auto at = lane_0.find("<title>CPU 0 "); at != std::string::npos;
       at = lane_0.find("<title>CPU 0 ", at + 1)) {
    ++bars;
  }
  EXPECT_EQ(bars, 4u) << lane_0;
  EXPECT_NE(lane_0.find("CPU 0 · other vCPUs"), std::string::npos);
  EXPECT_NE(lane_0.find("CPU 0 · crowd vCPU 5"), std::string::npos);     // the most time: kept
  EXPECT_EQ(lane_0.find("CPU 0 · crowd vCPU 0"), std::string::npos);     // the least: in "other"
  EXPECT_NE(html.find("other vCPUs (beyond the 3"), std::string::npos);  // and in the legend
}

}  // namespace
}  // namespace vcpumap::record
