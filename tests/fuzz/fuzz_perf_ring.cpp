// The records of one CPU's perf ring (perf::decode_ring, decode_record): samples of the sched
// tracepoints (PERF_SAMPLE_TIME | CPU | RAW) and PERF_RECORD_LOST, wrapping at the ring's end.
// The input is a u16 tail, a u16 count of bytes written, then the ring's data area. The layouts
// are kernel 6.18's (tests/fuzz/corpus/tracepoint holds the whole format files).
#include <cstring>

#include "fuzz.h"
#include "sources/perf/sched_tracer.h"

using namespace vcpumap;

namespace {

perf::SchedTracepoints kernel_tracepoints() {
  perf::SchedTracepoints tracepoints;
  tracepoints.sched_switch = *perf::parse_tracepoint_format(
      "name: sched_switch\nID: 372\nformat:\n"
      "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
      "\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n"
      "\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n"
      "\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;\n");
  tracepoints.migrate_task = *perf::parse_tracepoint_format(
      "name: sched_migrate_task\nID: 371\nformat:\n"
      "\tfield:__data_loc char[] comm;\toffset:8;\tsize:4;\tsigned:0;\n"
      "\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n"
      "\tfield:int orig_cpu;\toffset:20;\tsize:4;\tsigned:1;\n"
      "\tfield:int dest_cpu;\toffset:24;\tsize:4;\tsigned:1;\n");
  tracepoints.wakeup = *perf::parse_tracepoint_format(
      "name: sched_wakeup\nID: 374\nformat:\n"
      "\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n"
      "\tfield:int target_cpu;\toffset:32;\tsize:4;\tsigned:1;\n");
  return tracepoints;
}

bool same(const perf::SchedEvent& a, const perf::SchedEvent& b) {
  return a.kind == b.kind && a.time_ns == b.time_ns && a.cpu == b.cpu && a.prev_pid == b.prev_pid &&
         a.next_pid == b.next_pid && a.prev_state == b.prev_state && a.pid == b.pid &&
         a.orig_cpu == b.orig_cpu && a.dest_cpu == b.dest_cpu && a.target_cpu == b.target_cpu &&
         a.lost == b.lost;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const perf::SchedTracepoints tracepoints = kernel_tracepoints();
  if (size < 5) return 0;
  std::uint16_t tail16, written;
  std::memcpy(&tail16, data, 2);
  std::memcpy(&written, data + 2, 2);
  const std::string_view ring = fuzz::as_text(data + 4, size - 4);
  const std::uint64_t tail = tail16, head = tail + written;
  constexpr int kCpu = 3;

  std::vector<perf::SchedEvent> events;
  std::vector<char> scratch;
  const auto new_tail = perf::decode_ring(tracepoints, kCpu, ring, tail, head, events, scratch);
  // Bounds: the tail moves forward, never past what was written, by whole records of 8 bytes
  // or more (so no more events than that allows).
  FUZZ_CHECK(new_tail >= tail && new_tail <= head);
  FUZZ_CHECK(events.size() <= (new_tail - tail) / 8);
  for (const auto& event : events) {
    if (event.kind == perf::SchedEvent::Kind::lost) FUZZ_CHECK(event.cpu == kCpu);
  }
  // Draining again from the new tail decodes nothing more.
  std::vector<perf::SchedEvent> more;
  FUZZ_CHECK(perf::decode_ring(tracepoints, kCpu, ring, new_tail, head, more, scratch) == new_tail);
  FUZZ_CHECK(more.empty());

  // Where the records sit in the ring does not matter: the same bytes rotated, with the tail
  // moved with them, decode to the same events (records that wrap included).
  const std::size_t shift = ring.size() / 3;
  const std::string rotated = std::string(ring.substr(shift)) + std::string(ring.substr(0, shift));
  const std::uint64_t moved = tail + ring.size() - shift;
  std::vector<perf::SchedEvent> same_events;
  const auto moved_tail =
      perf::decode_ring(tracepoints, kCpu, rotated, moved, moved + written, same_events, scratch);
  FUZZ_CHECK(moved_tail - moved == new_tail - tail);
  FUZZ_CHECK(same_events.size() == events.size());
  for (std::size_t i = 0; i < events.size(); ++i) FUZZ_CHECK(same(events[i], same_events[i]));
  return 0;
}
