// /proc/PID/task/TID/schedstat (procfs::parse_schedstat): "CPU-NS RUN-DELAY-NS TIMESLICES".
#include <fmt/format.h>

#include "fuzz.h"
#include "sources/procfs/parse.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto times = procfs::parse_schedstat(text);
  if (!times) return 0;
  // Bounds: each number is written in the text (leading zeros aside).
  for (const auto value : {times->cpu_time_ns, times->run_delay_ns, times->timeslices}) {
    FUZZ_CHECK(text.find(fmt::to_string(value)) != std::string_view::npos);
  }
  // Round trip.
  const auto again = procfs::parse_schedstat(
      fmt::format("{} {} {}\n", times->cpu_time_ns, times->run_delay_ns, times->timeslices));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->cpu_time_ns == times->cpu_time_ns);
  FUZZ_CHECK(again->run_delay_ns == times->run_delay_ns);
  FUZZ_CHECK(again->timeslices == times->timeslices);
  return 0;
}
