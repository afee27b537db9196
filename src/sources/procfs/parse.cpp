#include "sources/procfs/parse.h"

#include <array>

#include "util/text.h"

namespace vcpumap::procfs {
namespace {

// Splits text on spaces into at most N fields, stopping at a newline; returns how many were
// found. A plain loop: find_first_of(" \n") calls memchr per character, and the sampler splits
// every thread's stat line.
template <std::size_t N>
std::size_t split_fields(std::string_view text, std::array<std::string_view, N>& fields) {
  std::size_t count = 0;
  std::size_t at = 0;
  const std::size_t size = text.size();
  while (count < N) {
    while (at < size && text[at] == ' ') ++at;
    if (at == size || text[at] == '\n') break;
    const std::size_t begin = at;
    while (at < size && text[at] != ' ' && text[at] != '\n') ++at;
    fields[count++] = text.substr(begin, at - begin);
  }
  return count;
}

}  // namespace

Result<StatFields> parse_stat(std::string_view text) {
  // "pid (comm) state ppid ..." - comm is whatever the thread named itself, so only the last
  // ')' of the line can end it (htop and procps do the same).
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return make_error(ExitCode::failure, "stat line has no '(name)'");
  }
  StatFields stat;
  stat.comm = std::string(text.substr(open + 1, close - open - 1));

  // Fields after the name start at (3); field N is at index N - 3.
  constexpr std::size_t kState = 3 - 3;
  constexpr std::size_t kUtime = 14 - 3;
  constexpr std::size_t kStime = 15 - 3;
  constexpr std::size_t kStartTime = 22 - 3;
  constexpr std::size_t kProcessor = 39 - 3;
  std::array<std::string_view, kProcessor + 1> fields;
  const auto count = split_fields(text.substr(close + 1), fields);
  if (count <= kProcessor) {
    return make_error(ExitCode::failure, "stat line has {} fields after the name, expected {}",
                      count, kProcessor + 1);
  }
  if (fields[kState].size() != 1)
    return make_error(ExitCode::failure, "stat state is not a letter");
  stat.state = fields[kState][0];
  const auto utime = parse_u64(fields[kUtime]);
  const auto stime = parse_u64(fields[kStime]);
  const auto start_time = parse_u64(fields[kStartTime]);
  const auto processor = parse_i64(fields[kProcessor]);
  if (!utime || !stime || !start_time || !processor || *processor < -1 || *processor > 1 << 20) {
    return make_error(ExitCode::failure, "stat line has a malformed number");
  }
  stat.utime_ticks = *utime;
  stat.stime_ticks = *stime;
  stat.start_time_ticks = *start_time;
  stat.processor = static_cast<int>(*processor);
  return stat;
}

Result<SchedStat> parse_schedstat(std::string_view text) {
  std::array<std::string_view, 3> fields;
  if (split_fields(text, fields) != 3) {
    return make_error(ExitCode::failure, "schedstat line does not have 3 numbers");
  }
  const auto cpu_time = parse_u64(fields[0]);
  const auto run_delay = parse_u64(fields[1]);
  const auto timeslices = parse_u64(fields[2]);
  if (!cpu_time || !run_delay || !timeslices) {
    return make_error(ExitCode::failure, "schedstat line has a malformed number");
  }
  return SchedStat{*cpu_time, *run_delay, *timeslices};
}

namespace {

// The number of the line "KEY   :   VALUE" that starts with `key`; nullopt when absent. Finds the
// key directly instead of splitting all ~40 lines: the sampler parses this file for every thread.
std::optional<std::uint64_t> sched_value(std::string_view text, std::string_view key) {
  for (auto at = text.find(key); at != std::string_view::npos; at = text.find(key, at + 1)) {
    if (at != 0 && text[at - 1] != '\n') continue;
    auto line = text.substr(at + key.size());
    line = line.substr(0, line.find('\n'));
    const auto colon = line.find(':');
    // Only blanks between key and colon: not a longer key that starts the same way.
    if (colon == std::string_view::npos || !trim(line.substr(0, colon)).empty()) continue;
    return parse_u64(trim(line.substr(colon + 1)));
  }
  return std::nullopt;
}

}  // namespace

SchedCounters parse_sched(std::string_view text) {
  // Lines look like "se.nr_migrations                             :                    1".
  SchedCounters counters;
  counters.migrations = sched_value(text, "se.nr_migrations");
  counters.voluntary_switches = sched_value(text, "nr_voluntary_switches");
  counters.involuntary_switches = sched_value(text, "nr_involuntary_switches");
  return counters;
}

Result<CpuSet> parse_status_affinity(std::string_view text) {
  constexpr std::string_view kKey = "\nCpus_allowed_list:";
  auto at = text.find(kKey);
  if (at == std::string_view::npos) {
    return make_error(ExitCode::failure, "status has no Cpus_allowed_list line");
  }
  auto rest = text.substr(at + kKey.size());
  return CpuSet::parse_list(rest.substr(0, rest.find('\n')));
}

std::optional<int> parse_status_nspid(std::string_view text) {
  constexpr std::string_view kKey = "NSpid:";
  std::size_t at = text.starts_with(kKey) ? 0 : text.find("\nNSpid:");
  if (at == std::string_view::npos) return std::nullopt;
  auto line = text.substr(at + (text[at] == '\n' ? 1 : 0) + kKey.size());
  line = trim(line.substr(0, line.find('\n')));
  // "NSpid:\t4321\t12\t1": one id per namespace, outermost first.
  const auto last = line.find_last_of(" \t");
  const auto id = parse_u64(last == std::string_view::npos ? line : line.substr(last + 1));
  if (!id || *id == 0 || *id > 1U << 22) return std::nullopt;  // PID_MAX_LIMIT
  return static_cast<int>(*id);
}

std::vector<std::string> parse_cmdline(std::string_view text) {
  std::vector<std::string> args;
  while (!text.empty()) {
    const auto end = text.find('\0');
    args.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return args;
}

}  // namespace vcpumap::procfs
