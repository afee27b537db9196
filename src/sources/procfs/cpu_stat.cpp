#include "sources/procfs/cpu_stat.h"

#include <fcntl.h>

#include <charconv>
#include <cmath>

#include "util/text.h"

namespace vcpumap::procfs {
namespace {

// The next blank-separated word of `text`, consumed.
std::string_view next_word(std::string_view& text) {
  const auto start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    text = {};
    return {};
  }
  text.remove_prefix(start);
  const auto end = text.find_first_of(" \t");
  const auto word = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end);
  return word;
}

}  // namespace

Result<std::vector<CpuTimes>> parse_proc_stat_cpus(std::string_view text) {
  std::vector<CpuTimes> cpus;
  while (!text.empty()) {
    const auto end = text.find('\n');
    auto line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const auto key = next_word(line);
    // "cpu" alone is the sum; "cpuN" one CPU. Offline CPUs have no line.
    if (key.size() <= 3 || key.substr(0, 3) != "cpu") continue;
    const auto number = parse_u64(key.substr(3));
    if (!number || *number > 1U << 20) {
      return make_error(ExitCode::failure, "proc/stat: bad CPU line '{}'", printable(key));
    }
    CpuTimes times;
    times.cpu = static_cast<int>(*number);
    std::uint64_t* fields[] = {&times.user,   &times.nice, &times.system,  &times.idle,
                               &times.iowait, &times.irq,  &times.softirq, &times.steal};
    int parsed = 0;
    for (auto* field : fields) {
      const auto word = next_word(line);
      if (word.empty()) break;  // kernels before 2.6.11 had no steal
      const auto value = parse_u64(word);
      if (!value) {
        return make_error(ExitCode::failure, "proc/stat: bad number '{}' for cpu{}",
                          printable(word), times.cpu);
      }
      *field = *value;
      ++parsed;
    }
    if (parsed < 4) {
      return make_error(ExitCode::failure, "proc/stat: cpu{} has {} fields, expected 4 or more",
                        times.cpu, parsed);
    }
    cpus.push_back(times);
  }
  return cpus;
}

Result<LoadAverage> parse_loadavg(std::string_view text) {
  LoadAverage load;
  double* fields[] = {&load.one, &load.five, &load.fifteen};
  for (auto* field : fields) {
    const auto word = next_word(text);
    const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), *field);
    // A load is an average count of tasks: from_chars also takes "-1", "nan" and "inf", which
    // the views would print as they are.
    if (word.empty() || error != std::errc{} || end != word.data() + word.size() ||
        !std::isfinite(*field) || *field < 0) {
      return make_error(ExitCode::failure, "proc/loadavg: bad load '{}'", printable(word));
    }
  }
  return load;
}

HostCpuFiles::HostCpuFiles(const std::filesystem::path& root)
    : stat_(open_at(AT_FDCWD, (root / "proc/stat").c_str())),
      loadavg_(open_at(AT_FDCWD, (root / "proc/loadavg").c_str())) {}

std::vector<CpuTimes> HostCpuFiles::read_cpu_times() {
  if (!stat_.valid()) return {};
  const auto text = read_all(stat_.get());
  if (!text) return {};
  auto cpus = parse_proc_stat_cpus(*text);
  if (!cpus) return {};
  return std::move(*cpus);
}

std::optional<LoadAverage> HostCpuFiles::read_loadavg() {
  if (!loadavg_.valid()) return std::nullopt;
  const auto text = read_all(loadavg_.get());
  if (!text) return std::nullopt;
  auto load = parse_loadavg(*text);
  if (!load) return std::nullopt;
  return *load;
}

}  // namespace vcpumap::procfs
