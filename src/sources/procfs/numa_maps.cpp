#include "sources/procfs/numa_maps.h"

#include <string>
#include <vector>

#include "util/text.h"

namespace vcpumap::procfs {

NodeMemory parse_numa_maps(std::string_view text) {
  NodeMemory memory;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    // proc(5): "ADDRESS POLICY [file=…] [anon=N] … N0=PAGES N1=PAGES kernelpagesize_kB=4".
    // The page size comes last, so gather the counts first.
    std::vector<std::pair<int, std::uint64_t>> pages;
    std::uint64_t page_kb = 4;
    while (!line.empty()) {
      const auto space = line.find(' ');
      const auto field = line.substr(0, space);
      line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
      const auto equals = field.find('=');
      if (equals == std::string_view::npos) continue;
      const auto key = field.substr(0, equals);
      const auto value = parse_u64(field.substr(equals + 1));
      if (!value) continue;
      if (key == "kernelpagesize_kB") {
        page_kb = *value;
      } else if (key.size() > 1 && key[0] == 'N') {
        if (auto node = parse_u64(key.substr(1)); node && *node < (1U << 16)) {
          pages.emplace_back(static_cast<int>(*node), *value);
        }
      }
    }
    for (const auto& [node, count] : pages) memory[node] += count * page_kb;
  }
  return memory;
}

std::optional<NodeMemory> read_node_memory(const Procfs& procfs, int pid) {
  const auto text = procfs.read_proc_file(std::to_string(pid) + "/numa_maps");
  if (!text) return std::nullopt;
  return parse_numa_maps(*text);
}

}  // namespace vcpumap::procfs
