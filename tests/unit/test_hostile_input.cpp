// Inputs that once broke a parser of outside text (found by the fuzz targets, tests/fuzz/), as a
// user would meet them: a QEMU or libvirt that answers oddly, a damaged recording or tracefs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "record/format.h"
#include "sources/bpf/delay_records.h"
#include "sources/bpf/event_decode.h"
#include "sources/libvirt/status_file.h"
#include "sources/perf/sched_tracer.h"
#include "sources/qmp/qmp.h"
#include "util/cpuset.h"

namespace vcpumap {
namespace {

TEST(HostileInput, QmpErrorThatIsNotAnObjectIsAnError) {
  // nlohmann's value() threw here, and the exception ended vcpumap.
  const auto reply = qmp::parse_query_cpus_fast(R"({"error": 1})");
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message.find("no description"), std::string::npos);
  EXPECT_FALSE(qmp::parse_query_cpus_fast(R"({"error": {"desc": 7}})").ok());
}

TEST(HostileInput, QmpThreadIdsAreNotCutToAnInt) {
  // get<int>() made thread id 4294967297 into 1: vcpumap would have named init a vCPU.
  const auto reply = qmp::parse_query_cpus_fast(
      R"({"return": [{"cpu-index": 0, "thread-id": 4294967297}, {"cpu-index": 1,)"
      R"( "thread-id": 7058}, {"cpu-index": -1, "thread-id": 5}, {"cpu-index": 2, "thread-id": 0}]})");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(*reply, (std::map<int, int>{{1, 7058}}));
}

TEST(HostileInput, LibvirtStatusPidBeyondAnIntIsNotNegative) {
  // 2^31 passed the range check and became -2147483648.
  const auto status = libvirt::parse_status_xml(
      "<domstatus pid='2147483648'><vcpus><vcpu id='0' pid='2147483647'/>"
      "<vcpu id='1' pid='2147483648'/></vcpus></domstatus>");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->pid, 0);
  EXPECT_EQ(status->vcpu_tids, (std::map<int, int>{{0, 2147483647}}));
}

TEST(HostileInput, TracepointFieldAtTheEndOfAnIntReadsAsMissing) {
  // offset + size overflowed an int (UBSan) before the bounds check.
  const auto tracepoint = perf::parse_tracepoint_format(
      "ID: 1\n\tfield:pid_t prev_pid;\toffset:2147483647;\tsize:4;\tsigned:1;\n"
      "\tfield:pid_t next_pid;\toffset:4294967304;\tsize:4;\tsigned:1;\n");
  ASSERT_TRUE(tracepoint.ok());
  EXPECT_EQ(tracepoint->next_pid.offset, -1);  // beyond an int: not a layout, ignored
  perf::SchedTracepoints tracepoints;
  tracepoints.sched_switch = *tracepoint;
  const std::string raw("\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
  perf::SchedEvent event;
  ASSERT_TRUE(perf::decode_raw(tracepoints, raw, event));
  EXPECT_EQ(event.prev_pid, -1);
}

TEST(HostileInput, RecordingHostBlockWithAHugeCpuIsDamaged) {
  // CPU 2^31 - 1 made the reader allocate a 256 MiB bitmap for a 30-byte block.
  std::string payload;
  for (const char* text : {"vcpumap", "hv1", "6.1"}) record::put_string(payload, text);
  payload.push_back(0);                    // sampled
  record::put_varint(payload, 1000);       // interval
  record::put_signed(payload, 0);          // start
  record::put_varint(payload, 1);          // one CPU
  record::put_signed(payload, INT32_MAX);  // its number
  for (int i = 0; i < 3; ++i) record::put_signed(payload, 0);
  payload.push_back(1);
  for (int i = 0; i < 3; ++i) record::put_varint(payload, 1);
  record::put_string(payload, "");
  record::put_string(payload, "");
  record::put_varint(payload, 0);
  EXPECT_FALSE(record::decode_payload(1, payload).ok());
}

// A BPF ring record is checked before it becomes an event: the consumer once took any record at
// least as long as the struct, whatever CPU or pid it named.
TEST(HostileInput, BpfEventRecordsAreDecodedOrRefusedInOneLine) {
  const auto decode = [](const vcpumap_sched_event& raw, std::size_t size = sizeof(raw)) {
    return bpf::decode_event({reinterpret_cast<const std::byte*>(&raw), size});
  };
  vcpumap_sched_event raw{};
  raw.time_ns = 5'000'000'000;
  raw.kind = VCPUMAP_EVENT_MIGRATE;
  raw.cpu = 1;
  raw.pid = 4242;
  raw.orig_cpu = 1;
  raw.dest_cpu = 0;
  const auto migrate = decode(raw);
  ASSERT_TRUE(migrate.ok()) << migrate.error().message;
  EXPECT_EQ(migrate->kind, SchedEvent::Kind::migrate);
  EXPECT_EQ(migrate->time_ns, 5'000'000'000u);
  EXPECT_EQ(migrate->pid, 4242);
  EXPECT_EQ(migrate->orig_cpu, 1);
  EXPECT_EQ(migrate->dest_cpu, 0);
  EXPECT_EQ(migrate->target_cpu, -1);  // not a wakeup's field

  EXPECT_EQ(
      decode(raw, sizeof(raw) - 1).error().message,
      fmt::format("sched event record of {} bytes: it takes {}", sizeof(raw) - 1, sizeof(raw)));
  auto bad = raw;
  bad.dest_cpu = -5;
  EXPECT_FALSE(decode(bad).ok());
  bad = raw;
  bad.cpu = CpuSet::kMaxCpu;
  EXPECT_EQ(decode(bad).error().message, "sched event record on CPU 65536: no such CPU");
  bad = raw;
  bad.kind = 0;
  EXPECT_EQ(decode(bad).error().message, "sched event record of kind 0: this build knows 1-3");
}

}  // namespace
}  // namespace vcpumap
