// The records of the sched-event ring (struct vcpumap_sched_event, written by sched_events.bpf.c)
// decoded apart from the ring, so that what the kernel hands over is checked, and fuzzed, without
// BPF: the ring consumer (event_ring.cpp) and tests/fuzz/fuzz_bpf_event.cpp share it.
#pragma once

#include <cstddef>
#include <span>

#include "sources/event_source.h"
#include "util/result.h"

namespace vcpumap::bpf {

// One ring record as a SchedEvent; an error, saying why, when it is shorter than the record, of
// a kind this build does not know, or names a CPU or pid no kernel would (a negative one, or a
// CPU past CpuSet::kMaxCpu). Bytes past the record are ignored (the ring pads to 8).
Result<SchedEvent> decode_event(std::span<const std::byte> record);

}  // namespace vcpumap::bpf
