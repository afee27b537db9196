// /proc/PID/numa_maps (procfs::parse_numa_maps): KiB of a process's memory on each NUMA node.
#include <algorithm>

#include "fuzz.h"
#include "sources/procfs/numa_maps.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto memory = procfs::parse_numa_maps(text);
  // Bounds: a node per "N<node>=" field at most, each a node number the parser accepts.
  FUZZ_CHECK(memory.size() <= static_cast<std::size_t>(std::count(text.begin(), text.end(), '=')));
  for (const auto& [node, kib] : memory) {
    FUZZ_CHECK(node >= 0 && node < (1 << 16));
    FUZZ_CHECK(node <= fuzz::largest_number(text));
  }
  // Mappings are lines: the whole is the sum of its two halves.
  std::string_view before, after;
  if (!fuzz::split_at_middle_line(text, before, after)) return 0;
  auto sum = procfs::parse_numa_maps(before);
  for (const auto& [node, kib] : procfs::parse_numa_maps(after)) sum[node] += kib;
  FUZZ_CHECK(sum == memory);
  return 0;
}
