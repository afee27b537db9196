// /proc/PID/task/TID/sched (procfs::parse_sched): "KEY   :   VALUE" lines of CONFIG_SCHED_DEBUG.
#include <fmt/format.h>

#include "fuzz.h"
#include "sources/procfs/parse.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto counters = procfs::parse_sched(text);
  const std::pair<const char*, std::optional<std::uint64_t>> fields[] = {
      {"se.nr_migrations", counters.migrations},
      {"nr_voluntary_switches", counters.voluntary_switches},
      {"nr_involuntary_switches", counters.involuntary_switches}};
  std::string written = "qemu-system-x86 (77, #threads: 4)\n-------------------\n";
  for (const auto& [key, value] : fields) {
    // Bounds: a counter comes from its own line, and its number is written there.
    if (!value) continue;
    FUZZ_CHECK(text.find(key) != std::string_view::npos);
    FUZZ_CHECK(text.find(fmt::to_string(*value)) != std::string_view::npos);
    written += fmt::format("{:<45}:{:>21}\n", key, *value);
  }
  // Round trip: a file of the counters found gives them back, and no others.
  const auto again = procfs::parse_sched(written);
  FUZZ_CHECK(again.migrations == counters.migrations);
  FUZZ_CHECK(again.voluntary_switches == counters.voluntary_switches);
  FUZZ_CHECK(again.involuntary_switches == counters.involuntary_switches);
  return 0;
}
