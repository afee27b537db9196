// /proc/PID/task/TID/stat (procfs::parse_stat, parse_thread_files): the thread's name may hold
// any byte, ')' included, so the name ends at the last ')'.
#include <fmt/format.h>

#include "fuzz.h"
#include "sources/procfs/parse.h"
#include "sources/procfs/thread_files.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto stat = procfs::parse_stat(text);
  if (!stat) return 0;
  // Bounds: the name is text of the line (with its "()" around it), the CPU a CPU number or -1.
  FUZZ_CHECK(stat->comm.size() + 2 <= text.size());
  FUZZ_CHECK(text.find(stat->comm) != std::string_view::npos);
  FUZZ_CHECK(stat->processor >= -1 && stat->processor <= 1 << 20);
  FUZZ_CHECK(stat->state != ' ' && stat->state != '\n');

  // Round trip: a line written from the fields, in proc(5)'s order, parses to the same fields.
  std::string line = fmt::format("1 ({}) {}", stat->comm, stat->state);
  for (int field = 4; field <= 44; ++field) {
    std::uint64_t value = 0;
    if (field == 14) value = stat->utime_ticks;
    if (field == 15) value = stat->stime_ticks;
    if (field == 22) value = stat->start_time_ticks;
    line += field == 39 ? fmt::format(" {}", stat->processor) : fmt::format(" {}", value);
  }
  line += '\n';
  const auto again = procfs::parse_stat(line);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->comm == stat->comm && again->state == stat->state);
  FUZZ_CHECK(again->utime_ticks == stat->utime_ticks && again->stime_ticks == stat->stime_ticks);
  FUZZ_CHECK(again->start_time_ticks == stat->start_time_ticks);
  FUZZ_CHECK(again->processor == stat->processor);

  // The sampler's path gives the same facts, and leaves what it was not given unavailable.
  const auto parsed = procfs::parse_thread_files(text, nullptr, nullptr);
  FUZZ_CHECK(parsed.has_value());
  FUZZ_CHECK(parsed->name == stat->comm && parsed->facts.last_cpu == stat->processor);
  FUZZ_CHECK(parsed->facts.utime_ticks == stat->utime_ticks);
  FUZZ_CHECK(!parsed->facts.cpu_time_ns && !parsed->facts.run_delay_ns);
  FUZZ_CHECK(!parsed->facts.migrations);
  return 0;
}
