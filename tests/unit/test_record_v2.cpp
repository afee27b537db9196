// Version 2 of the recording format: the culprits of every switch, what a newer writer may add
// (block types, event kinds, event fields) skipped rather than taken for damage, enums checked,
// a real version-1 file still read as before; and the replay engine, through which a recording's
// events split each vCPU's delay the way the live stream does.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collect/delay_split.h"
#include "fixture_tree.h"
#include "record/analysis.h"
#include "record/file.h"
#include "record/replay.h"
#include "views/report_text.h"

namespace vcpumap::record {
namespace {

namespace fs = std::filesystem;

constexpr int kVmPid = 100, kVcpu0 = 101, kVcpu1 = 102, kHog = 500;

HostBlock exact_host() {
  HostBlock host;
  host.tool_version = "vcpumap test";
  host.hostname = "hv1";
  host.mode = Mode::exact;
  for (int cpu = 0; cpu < 2; ++cpu) host.topology.cpus.push_back(testing::make_cpu(cpu, cpu, 0, 0));
  return host;
}

IdentityBlock web() {
  IdentityBlock identity;
  identity.vms.push_back({0, kVmPid, "web", "", Hypervisor::qemu});
  identity.threads.push_back({0, 0, kVcpu0, "CPU 0/KVM", ThreadRole::vcpu, 0, "", 1, "0"});
  identity.threads.push_back({1, 0, kVcpu1, "CPU 1/KVM", ThreadRole::vcpu, 1, "", 1, "0"});
  return identity;
}

Peer hog() {
  return {kHog, kHog, "spin", 4242, false};
}

Event event(EventKind kind, std::uint64_t time, std::uint32_t key, int cpu, char state = 'R',
            Peer peer = {}) {
  Event out;
  out.kind = kind;
  out.time_ns = time;
  out.key = key;
  out.cpu = cpu;
  out.state = state;
  out.peer = std::move(peer);
  out.has_peer = kind == EventKind::switch_in || kind == EventKind::switch_out ||
                 kind == EventKind::cpu_switch;
  return out;
}

// On CPU 0: vCPU 0 is preempted by the hog at 100 and runs again at 400 (300 behind the hog);
// then vCPU 1 preempts it at 500, a kworker takes over from vCPU 1 at 550 and vCPU 0 runs at 700
// (50 behind web vCPU 1, 150 behind the kworker).
EventBlock contended() {
  const Peer vcpu1{kVcpu1, kVmPid, "CPU 1/KVM", 0, false};
  const Peer vcpu0{kVcpu0, kVmPid, "CPU 0/KVM", 0, false};
  const Peer kworker{7, 2, "kworker/0:1", 1, true};
  EventBlock block;
  block.events = {event(EventKind::switch_out, 100, 0, 0, 'R', hog()),
                  event(EventKind::switch_in, 400, 0, 0, 'R', hog()),
                  event(EventKind::switch_out, 500, 0, 0, 'R', vcpu1),
                  event(EventKind::switch_in, 500, 1, 0, 'R', vcpu0),
                  event(EventKind::switch_out, 550, 1, 0, 'S', kworker),
                  event(EventKind::switch_in, 700, 0, 0, 'R', kworker)};
  return block;
}

Result<Block> round_trip(const EventBlock& block, std::uint32_t version) {
  return decode_payload(static_cast<std::uint8_t>(BlockType::events),
                        encode_payload(block, version), version);
}

TEST(RecordV2, EventsKeepTheOtherSideOfEverySwitch) {
  EventBlock block = contended();
  block.events.push_back(event(EventKind::cpu_switch, 800, 0, 1, 'R', hog()));
  const auto decoded = round_trip(block, 2);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  const auto& events = std::get<EventBlock>(*decoded).events;
  ASSERT_EQ(events.size(), block.events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].time_ns, block.events[i].time_ns);
    EXPECT_EQ(events[i].peer, block.events[i].peer) << i;
    EXPECT_TRUE(events[i].has_peer);
  }
  EXPECT_EQ(events[4].peer.comm, "kworker/0:1");
  EXPECT_TRUE(events[4].peer.kernel_thread);
  EXPECT_EQ(events[0].peer.cgroup, 4242u);
  // Version 1 had no peers and no cpu_switch: written as version 1, they are left out.
  const auto old = round_trip(block, 1);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(std::get<EventBlock>(*old).events.size(), block.events.size() - 1);
  EXPECT_FALSE(std::get<EventBlock>(*old).events[0].has_peer);
}

TEST(RecordV2, AnEventKindOrFieldOfANewerWriterIsSkippedByItsLength) {
  // Two events: one of kind 77 (unknown) at +10, then a wakeup at +5 carrying an extra field.
  std::string payload;
  put_varint(payload, 2);
  payload.push_back(77);
  put_signed(payload, 10);
  put_signed(payload, 0);
  put_string(payload, "whatever a newer vcpumap keeps");
  payload.push_back(static_cast<char>(EventKind::wakeup));
  put_signed(payload, 5);
  put_signed(payload, 1);
  std::string body;
  put_varint(body, 3);   // the key
  put_varint(body, 99);  // a field added after it
  put_string(payload, body);
  const auto decoded = decode_payload(static_cast<std::uint8_t>(BlockType::events), payload, 2);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  const auto& events = std::get<EventBlock>(*decoded).events;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::wakeup);
  EXPECT_EQ(events[0].time_ns, 15u);  // the skipped event's time still counts
  EXPECT_EQ(events[0].key, 3u);
  EXPECT_EQ(events[0].cpu, 1);
}

TEST(RecordV2, EnumsOutOfRangeAreDamage) {
  HostBlock host = exact_host();
  // The mode byte follows three strings, each a one-byte length and its bytes.
  std::string bad_mode = encode_payload(host);
  const std::size_t at = 3 + host.tool_version.size() + host.hostname.size() + host.kernel.size();
  ASSERT_EQ(bad_mode[at], 1);  // exact
  bad_mode[at] = 7;
  EXPECT_FALSE(decode_payload(static_cast<std::uint8_t>(BlockType::host), bad_mode).ok());

  IdentityBlock identity = web();
  identity.threads[0].role = static_cast<ThreadRole>(9);
  EXPECT_FALSE(
      decode_payload(static_cast<std::uint8_t>(BlockType::identity), encode_payload(identity))
          .ok());
  EventBlock events = contended();
  events.events[0].state = 'Q';
  EXPECT_FALSE(round_trip(events, 2).ok());
  events.events[0].state = 'R';
  events.events[0].kind = static_cast<EventKind>(9);
  EXPECT_FALSE(round_trip(events, 1).ok());  // version 1 has no lengths to skip by
}

TEST(RecordV2, ABlockOfAnUnknownTypeIsSkippedNotDamage) {
  std::string file = encode_file_header();
  file += frame_block(BlockType::host, encode_payload(exact_host()));
  file += frame_block(static_cast<BlockType>(42), "a newer writer's block");
  file += frame_block(BlockType::identity, encode_payload(web()));
  file += frame_block(BlockType::end, encode_payload(EndBlock{1, 0, 0, 0, "duration reached"}));
  auto reader = RecordingReader::from_stream(std::make_unique<std::istringstream>(file), "new.rec",
                                             file.size());
  ASSERT_TRUE(reader.ok());
  int blocks = 0;
  while (reader->next()) ++blocks;
  EXPECT_EQ(blocks, 3);
  EXPECT_EQ(reader->skipped_blocks(), 1u);
  EXPECT_FALSE(reader->stopped_early()) << reader->problem();
  EXPECT_EQ(reader->valid_bytes(), file.size());
}

TEST(RecordV2, AVersionOneFileReadsAsVersionOneReadItself) {
  const fs::path dir = fs::path(VCPUMAP_FIXTURES) / "recordings";
  auto report = analyze_file(dir / "v1-exact.rec", {});
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_FALSE(report->has_delay_split);
  nlohmann::json now = views::report_json(*report);
  for (auto& vm : now["vms"]) {
    for (auto& vcpu : vm["vcpus"]) {
      EXPECT_TRUE(vcpu["delay"].is_null());
      vcpu.erase("delay");  // new in version 2's reports
    }
  }
  std::ifstream in(dir / "v1-exact.report.json");
  // What the version-1 vcpumap's `report --json` printed for this file.
  const auto before = nlohmann::json::parse(in);
  EXPECT_EQ(now, before);
}

// The events the kernel stream would give for contended(), as a live engine delivers them.
std::vector<SchedEvent> live_events() {
  auto sw = [](std::uint64_t time, int prev, SchedTaskInfo prev_info, std::int64_t state, int next,
               SchedTaskInfo next_info) {
    SchedEvent event;
    event.time_ns = time;
    event.cpu = 0;
    event.prev_pid = prev;
    event.next_pid = next;
    event.prev_state = state;
    event.prev = std::move(prev_info);
    event.next = std::move(next_info);
    return event;
  };
  const SchedTaskInfo v0{kVmPid, "CPU 0/KVM", 0, false}, v1{kVmPid, "CPU 1/KVM", 0, false};
  const SchedTaskInfo spin{kHog, "spin", 4242, false}, kworker{2, "kworker/0:1", 1, true};
  return {sw(100, kVcpu0, v0, 0, kHog, spin), sw(400, kHog, spin, 0, kVcpu0, v0),
          sw(500, kVcpu0, v0, 0, kVcpu1, v1), sw(550, kVcpu1, v1, 1, 7, kworker),
          sw(700, 7, kworker, 0, kVcpu0, v0)};
}

std::vector<bpf::DelayPair> split(const std::vector<SchedEvent>& events) {
  DelaySplitter splitter;
  splitter.watch_vcpu(kVcpu0);
  splitter.watch_vcpu(kVcpu1);
  for (const auto& event : events) splitter.add(event);
  return splitter.pairs();
}

TEST(RecordV2, AReplayedRecordingSplitsDelayAsTheLiveStreamDoes) {
  const auto live = split(live_events());
  ReplaySource replay({exact_host(), web(), contended()});
  std::vector<SchedEvent> replayed;
  while (!replay.done()) replay.drain(replayed);
  EXPECT_EQ(replayed.size(), live_events().size());  // a vCPU-to-vCPU switch is one again
  const auto from_file = split(replayed);
  ASSERT_EQ(from_file.size(), live.size());
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(from_file[i].waiter_tid, live[i].waiter_tid);
    EXPECT_EQ(from_file[i].culprit_tid, live[i].culprit_tid);
    EXPECT_EQ(from_file[i].culprit_tgid, live[i].culprit_tgid);
    EXPECT_EQ(from_file[i].culprit_comm, live[i].culprit_comm);
    EXPECT_EQ(from_file[i].ns, live[i].ns);
  }
  // vCPU 0: 300 behind the hog, 50 behind vCPU 1, 150 behind the kworker.
  std::map<int, std::uint64_t> behind;
  for (const auto& pair : live) {
    if (pair.waiter_tid == kVcpu0) behind[pair.culprit_tid] += pair.ns;
  }
  EXPECT_EQ(behind, (std::map<int, std::uint64_t>{{7, 150}, {kVcpu1, 50}, {kHog, 300}}));
}

TEST(RecordV2, TheReportSplitsEachVcpusDelayByCulprit) {
  char pattern[] = "/tmp/vcpumap-v2-test.XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  const fs::path path = dir / "exact.rec";
  {
    auto writer = RecordingWriter::create(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->write(exact_host()).ok());
    ASSERT_TRUE(writer->write(web()).ok());
    SampleBlock samples;
    samples.samples.push_back({0, {{0, 0, 'R', 0, 1000, 0}, {1, 0, 'R', 0, 0, 0}}});
    samples.samples.push_back({800, {{0, 0, 'R', 0, 1500, 0}, {1, 0, 'R', 0, 0, 0}}});
    ASSERT_TRUE(writer->write(samples).ok());
    ASSERT_TRUE(writer->write(contended()).ok());
    ASSERT_TRUE(writer->write(EndBlock{800, 2, 6, 0, "duration reached"}).ok());
  }
  auto report = analyze_file(path, {});
  fs::remove_all(dir);
  ASSERT_TRUE(report.ok()) << report.error().message;
  ASSERT_TRUE(report->has_delay_split);
  const auto& vcpu = report->vms.at(0).vcpus.at(0);
  ASSERT_TRUE(vcpu.delay.has_value());
  EXPECT_EQ(vcpu.delay->run_delay_ns, 500u);  // the schedstat delta between the samples
  EXPECT_EQ(vcpu.delay->attributed_ns, 500u);
  ASSERT_EQ(vcpu.delay->behind.size(), 3u);
  EXPECT_EQ(vcpu.delay->behind[0].kind, CulpritKind::host);
  EXPECT_EQ(vcpu.delay->behind[0].comm, "spin");
  EXPECT_EQ(vcpu.delay->behind[0].ns, 300u);
  EXPECT_EQ(vcpu.delay->behind[1].kind, CulpritKind::kernel);
  EXPECT_EQ(vcpu.delay->behind[2].kind, CulpritKind::vcpu);
  EXPECT_EQ(vcpu.delay->behind[2].vm, "web");
  EXPECT_EQ(vcpu.delay->behind[2].vcpu, 1);
  const auto json = views::report_json(*report);
  EXPECT_EQ(json["vms"][0]["vcpus"][0]["delay"]["behind"][0]["comm"], "spin");
  EXPECT_NE(views::render_report_summary(*report).find("host     spin (pid 500)"),
            std::string::npos);
}

}  // namespace
}  // namespace vcpumap::record
