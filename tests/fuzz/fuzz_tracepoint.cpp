// A sched tracepoint's `format` file (perf::parse_tracepoint_format) and the decoding of a raw
// tracepoint record by the layout it gave (perf::decode_raw). The input is the format text, a NUL
// byte, then the raw record.
#include <cstring>

#include <fmt/format.h>

#include "fuzz.h"
#include "sources/perf/sched_tracer.h"

using namespace vcpumap;

namespace {

bool same(const perf::Field& a, const perf::Field& b) {
  return a.offset == b.offset && a.size == b.size;
}

// What a field of `raw` holds: the little-endian signed integer at its offset, -1 when the
// field lies outside the record or has a size vcpumap does not read.
std::int64_t field_value(std::string_view raw, const perf::Field& field) {
  const std::int64_t end = std::int64_t{field.offset} + field.size;
  if (field.offset < 0 || end > static_cast<std::int64_t>(raw.size())) return -1;
  if (field.size != 2 && field.size != 4 && field.size != 8) return -1;
  std::uint64_t value = 0;
  for (int i = field.size - 1; i >= 0; --i) {
    value = value << 8 | static_cast<std::uint8_t>(raw[static_cast<std::size_t>(field.offset + i)]);
  }
  const int shift = 64 - 8 * field.size;  // sign-extend
  return static_cast<std::int64_t>(value << shift) >> shift;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = fuzz::as_text(data, size);
  const auto nul = input.find('\0');
  const auto text = input.substr(0, nul);
  const auto raw = nul == std::string_view::npos ? std::string_view{} : input.substr(nul + 1);
  const auto tracepoint = perf::parse_tracepoint_format(text);
  if (!tracepoint) return 0;
  FUZZ_CHECK(tracepoint->id >= 0);

  // Round trip: the layout written as a format file reads back the same.
  const std::pair<const char*, const perf::Field*> fields[] = {
      {"pid_t pid", &tracepoint->pid},
      {"pid_t prev_pid", &tracepoint->prev_pid},
      {"pid_t next_pid", &tracepoint->next_pid},
      {"long prev_state", &tracepoint->prev_state},
      {"int orig_cpu", &tracepoint->orig_cpu},
      {"int dest_cpu", &tracepoint->dest_cpu},
      {"int target_cpu", &tracepoint->target_cpu}};
  std::string written = fmt::format("name: fuzz\nID: {}\nformat:\n", tracepoint->id);
  for (const auto& [declaration, field] : fields) {
    written += fmt::format("\tfield:{};\toffset:{};\tsize:{};\tsigned:1;\n", declaration,
                           field->offset, field->size);
  }
  const auto again = perf::parse_tracepoint_format(written);
  FUZZ_CHECK(again.ok() && again->id == tracepoint->id);
  FUZZ_CHECK(same(again->pid, tracepoint->pid) && same(again->prev_pid, tracepoint->prev_pid));
  FUZZ_CHECK(same(again->next_pid, tracepoint->next_pid));
  FUZZ_CHECK(same(again->prev_state, tracepoint->prev_state));
  FUZZ_CHECK(same(again->orig_cpu, tracepoint->orig_cpu));
  FUZZ_CHECK(same(again->dest_cpu, tracepoint->dest_cpu));
  FUZZ_CHECK(same(again->target_cpu, tracepoint->target_cpu));

  // Decoding by this layout (as each of the three tracepoints) reads each field where the layout
  // puts it, and -1 for a field outside the record.
  perf::SchedTracepoints tracepoints;
  tracepoints.sched_switch = *tracepoint;
  tracepoints.migrate_task = *tracepoint;
  tracepoints.migrate_task.id = (tracepoint->id + 1) % 65536;
  tracepoints.wakeup = *tracepoint;
  tracepoints.wakeup.id = (tracepoint->id + 2) % 65536;
  perf::SchedEvent event;
  const bool decoded = perf::decode_raw(tracepoints, raw, event);
  std::uint16_t type = 0;
  if (raw.size() >= 2) std::memcpy(&type, raw.data(), 2);
  const bool known =
      raw.size() >= 8 && (type == tracepoints.sched_switch.id ||
                          type == tracepoints.migrate_task.id || type == tracepoints.wakeup.id);
  FUZZ_CHECK(decoded == known);
  if (!decoded) return 0;
  const auto value = [&](const perf::Field& field) {
    return static_cast<int>(field_value(raw, field));
  };
  if (type == tracepoints.sched_switch.id) {
    FUZZ_CHECK(event.kind == perf::SchedEvent::Kind::sched_switch);
    FUZZ_CHECK(event.prev_pid == value(tracepoint->prev_pid));
    FUZZ_CHECK(event.next_pid == value(tracepoint->next_pid));
    FUZZ_CHECK(event.prev_state == field_value(raw, tracepoint->prev_state));
  } else if (type == tracepoints.migrate_task.id) {
    FUZZ_CHECK(event.kind == perf::SchedEvent::Kind::migrate);
    FUZZ_CHECK(event.pid == value(tracepoint->pid));
    FUZZ_CHECK(event.orig_cpu == value(tracepoint->orig_cpu));
    FUZZ_CHECK(event.dest_cpu == value(tracepoint->dest_cpu));
  } else {
    FUZZ_CHECK(event.kind == perf::SchedEvent::Kind::wakeup);
    FUZZ_CHECK(event.pid == value(tracepoint->pid));
    FUZZ_CHECK(event.target_cpu == value(tracepoint->target_cpu));
  }
  return 0;
}
