// The records of the BPF sched-event ring (bpf::decode_event, struct vcpumap_sched_event of
// sched_events.bpf.c): the input is one record as the ring hands it over, of any length.
#include <cstring>
#include <vector>

#include "fuzz.h"
#include "sources/bpf/delay_records.h"
#include "sources/bpf/event_decode.h"
#include "util/cpuset.h"

using namespace vcpumap;

namespace {

bool same(const SchedEvent& a, const SchedEvent& b) {
  return a.kind == b.kind && a.time_ns == b.time_ns && a.cpu == b.cpu && a.prev_pid == b.prev_pid &&
         a.next_pid == b.next_pid && a.prev_state == b.prev_state && a.pid == b.pid &&
         a.orig_cpu == b.orig_cpu && a.dest_cpu == b.dest_cpu && a.target_cpu == b.target_cpu &&
         a.lost == b.lost;
}

// The record the BPF programs would write for `event`: only its kind's fields set.
vcpumap_sched_event encode(const SchedEvent& event) {
  vcpumap_sched_event raw{};
  raw.time_ns = event.time_ns;
  raw.cpu = event.cpu;
  switch (event.kind) {
    case SchedEvent::Kind::sched_switch:
      raw.kind = VCPUMAP_EVENT_SWITCH;
      raw.prev_pid = event.prev_pid;
      raw.next_pid = event.next_pid;
      raw.prev_state = event.prev_state;
      break;
    case SchedEvent::Kind::migrate:
      raw.kind = VCPUMAP_EVENT_MIGRATE;
      raw.pid = event.pid;
      raw.orig_cpu = event.orig_cpu;
      raw.dest_cpu = event.dest_cpu;
      break;
    case SchedEvent::Kind::wakeup:
      raw.kind = VCPUMAP_EVENT_WAKEUP;
      raw.pid = event.pid;
      raw.target_cpu = event.target_cpu;
      break;
    case SchedEvent::Kind::lost:
      break;  // never in the ring: the programs count those in .bss
  }
  return raw;
}

std::span<const std::byte> bytes(const void* data, std::size_t size) {
  return {static_cast<const std::byte*>(data), size};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto decoded = bpf::decode_event(bytes(data, size));
  // A record shorter than the struct is refused, whatever its bytes.
  if (size < sizeof(vcpumap_sched_event)) {
    FUZZ_CHECK(!decoded);
    return 0;
  }
  vcpumap_sched_event raw;
  std::memcpy(&raw, data, sizeof(raw));
  // One byte fewer is always refused; bytes past the record change nothing.
  FUZZ_CHECK(!bpf::decode_event(bytes(data, sizeof(raw) - 1)));
  const auto exact = bpf::decode_event(bytes(data, sizeof(raw)));
  FUZZ_CHECK(exact.ok() == decoded.ok());
  if (!decoded) {
    FUZZ_CHECK(!decoded.error().message.empty());
    return 0;
  }
  const SchedEvent& event = *decoded;
  FUZZ_CHECK(same(event, *exact));
  // Bounds: what a user of the events may index by, and the kind the record said.
  FUZZ_CHECK(event.kind != SchedEvent::Kind::lost);
  FUZZ_CHECK(event.cpu >= 0 && event.cpu < CpuSet::kMaxCpu);
  FUZZ_CHECK(event.time_ns == raw.time_ns);
  switch (event.kind) {
    case SchedEvent::Kind::sched_switch:
      FUZZ_CHECK(raw.kind == VCPUMAP_EVENT_SWITCH && event.prev_pid >= 0 && event.next_pid >= 0);
      FUZZ_CHECK(event.pid == 0 && event.target_cpu == -1);
      break;
    case SchedEvent::Kind::migrate:
      FUZZ_CHECK(raw.kind == VCPUMAP_EVENT_MIGRATE && event.pid >= 0);
      FUZZ_CHECK(event.orig_cpu >= 0 && event.dest_cpu >= 0 && event.target_cpu == -1);
      break;
    case SchedEvent::Kind::wakeup:
      FUZZ_CHECK(raw.kind == VCPUMAP_EVENT_WAKEUP && event.pid >= 0 && event.target_cpu >= 0);
      FUZZ_CHECK(event.prev_pid == 0 && event.orig_cpu == -1);
      break;
    case SchedEvent::Kind::lost:
      break;
  }
  // Round trip: the record the programs would write for this event decodes to it again.
  const vcpumap_sched_event again = encode(event);
  const auto back = bpf::decode_event(bytes(&again, sizeof(again)));
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(same(*back, event));
  return 0;
}
