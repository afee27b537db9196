// /proc/stat's per-CPU lines (procfs::parse_proc_stat_cpus).
#include <algorithm>

#include <fmt/format.h>

#include "fuzz.h"
#include "sources/procfs/cpu_stat.h"

using namespace vcpumap;

namespace {

bool same(const std::vector<procfs::CpuTimes>& a, const std::vector<procfs::CpuTimes>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.cpu == y.cpu && x.user == y.user && x.nice == y.nice && x.system == y.system &&
           x.idle == y.idle && x.iowait == y.iowait && x.irq == y.irq && x.softirq == y.softirq &&
           x.steal == y.steal;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto cpus = procfs::parse_proc_stat_cpus(text);
  if (!cpus) return 0;
  // Bounds: a line per CPU at most, CPU numbers the parser accepts and that the text holds.
  FUZZ_CHECK(cpus->size() <=
             static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  for (const auto& cpu : *cpus) {
    FUZZ_CHECK(cpu.cpu >= 0 && cpu.cpu <= 1 << 20 && cpu.cpu <= fuzz::largest_number(text));
  }
  // Round trip: the lines written back parse to the same times.
  std::string written = "cpu  1 2 3 4 5 6 7 8 0 0\n";
  for (const auto& t : *cpus) {
    written += fmt::format("cpu{} {} {} {} {} {} {} {} {} 0 0\n", t.cpu, t.user, t.nice, t.system,
                           t.idle, t.iowait, t.irq, t.softirq, t.steal);
  }
  written += "intr 1 2 3\nctxt 5\nbtime 1700000000\n";
  const auto again = procfs::parse_proc_stat_cpus(written);
  FUZZ_CHECK(again.ok() && same(*again, *cpus));
  // Lines are independent: the whole is its two halves one after the other.
  std::string_view before, after;
  if (!fuzz::split_at_middle_line(text, before, after)) return 0;
  auto first = procfs::parse_proc_stat_cpus(before);
  const auto second = procfs::parse_proc_stat_cpus(after);
  FUZZ_CHECK(first.ok() && second.ok());
  first->insert(first->end(), second->begin(), second->end());
  FUZZ_CHECK(same(*first, *cpus));
  return 0;
}
