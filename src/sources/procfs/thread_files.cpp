#include "sources/procfs/thread_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "sources/procfs/affinity.h"
#include "sources/procfs/parse.h"
#include "sources/procfs/procfs.h"
#include "util/text.h"

namespace vcpumap::procfs {
namespace {

// Reads a whole kept file into `text`, reusing its capacity. One pread when the file fits: a
// short read from a /proc seq_file means its end, as it does for a regular file.
bool pread_into(int fd, std::string& text) {
  if (text.capacity() < 4096) text.reserve(4096);
  std::size_t size = 0;
  while (true) {
    text.resize(text.capacity());
    const auto room = text.size() - size;
    const auto got = ::pread(fd, text.data() + size, room, static_cast<off_t>(size));
    if (got < 0) {
      if (errno == EINTR) continue;
      text.clear();
      return false;
    }
    size += static_cast<std::size_t>(got);
    if (static_cast<std::size_t>(got) < room) break;
    text.reserve(text.capacity() * 2);
  }
  text.resize(size);
  return true;
}

// "TID/FILE" in a small buffer: opened relative to the task folder, so a reused pid can't mix
// two processes' threads.
struct TaskPath {
  char text[40];
  TaskPath(int tid, const char* file) {
    *fmt::format_to_n(text, sizeof text - 1, "{}/{}", tid, file).out = '\0';
  }
};

}  // namespace

std::optional<ParsedThread> parse_thread_files(std::string_view stat, const std::string* schedstat,
                                               const std::string* sched) {
  auto fields = parse_stat(stat);
  if (!fields) return std::nullopt;
  ParsedThread parsed;
  parsed.name = std::move(fields->comm);
  auto& facts = parsed.facts;
  facts.state = fields->state;
  facts.utime_ticks = fields->utime_ticks;
  facts.stime_ticks = fields->stime_ticks;
  facts.start_time_ticks = fields->start_time_ticks;
  facts.last_cpu = fields->processor;
  // Missing with CONFIG_SCHEDSTATS off: the fields stay empty ("unavailable"), never 0.
  if (schedstat != nullptr) {
    if (const auto times = parse_schedstat(*schedstat)) {
      facts.cpu_time_ns = times->cpu_time_ns;
      facts.run_delay_ns = times->run_delay_ns;
      facts.timeslices = times->timeslices;
    }
  }
  // Missing without CONFIG_SCHED_DEBUG.
  if (sched != nullptr) {
    const auto counters = parse_sched(*sched);
    facts.migrations = counters.migrations;
    facts.voluntary_switches = counters.voluntary_switches;
    facts.involuntary_switches = counters.involuntary_switches;
  }
  return parsed;
}

CpuSet read_thread_affinity(int task_dir_fd, int tid, bool live) {
  CpuSet set;
  if (live) return read_affinity(tid).cpus;
  if (const auto text = read_file_at(task_dir_fd, TaskPath(tid, "status").text)) {
    if (auto affinity = parse_status_affinity(*text)) set = std::move(*affinity);
  }
  return set;
}

TaskDir::TaskDir(const std::filesystem::path& proc, int pid)
    : fd_(open_at(AT_FDCWD, (proc / fmt::to_string(pid) / "task").c_str(), O_DIRECTORY)) {}

int TaskDir::thread_count() const {
  struct stat info {};
  if (!fd_.valid() || ::fstat(fd_.get(), &info) != 0) return -1;
  // A removed folder (the process exited, or a fixture was deleted) has no links left.
  if (info.st_nlink < 2) return -1;
  return static_cast<int>(info.st_nlink) - 2;
}

std::vector<int> TaskDir::list_tids() const {
  if (!fd_.valid()) return {};
  // A fresh open: readdir on a shared fd would move its offset under other readers.
  return numeric_entries(open_at(fd_.get(), ".", O_DIRECTORY));
}

std::optional<ThreadFiles> ThreadFiles::open(int task_dir_fd, int tid, ParsedThread& first) {
  ThreadFiles files;
  files.tid_ = tid;
  files.stat_ = open_at(task_dir_fd, TaskPath(tid, "stat").text);
  if (!files.stat_.valid()) return std::nullopt;  // it exited: normal
  files.schedstat_ = open_at(task_dir_fd, TaskPath(tid, "schedstat").text);
  files.sched_ = open_at(task_dir_fd, TaskPath(tid, "sched").text);
  if (!pread_into(files.stat_.get(), files.stat_text_)) return std::nullopt;
  auto parsed = parse_thread_files(
      files.stat_text_,
      files.schedstat_.valid() && pread_into(files.schedstat_.get(), files.schedstat_text_)
          ? &files.schedstat_text_
          : nullptr,
      files.sched_.valid() && pread_into(files.sched_.get(), files.sched_text_) ? &files.sched_text_
                                                                                : nullptr);
  if (!parsed) return std::nullopt;
  files.start_time_ticks_ = parsed->facts.start_time_ticks;
  parsed->facts.affinity = std::move(first.facts.affinity);
  first = std::move(*parsed);
  return files;
}

ThreadRead ThreadFiles::read(ParsedThread& out) {
  // The kernel answers ESRCH once the thread is gone; the fd stays bound to the old thread,
  // so a new thread with the same tid is never read through it on a live host.
  if (!pread_into(stat_.get(), stat_text_)) return ThreadRead::exited;
  const bool has_schedstat = schedstat_.valid() && pread_into(schedstat_.get(), schedstat_text_);
  const bool has_sched = sched_.valid() && pread_into(sched_.get(), sched_text_);
  auto parsed = parse_thread_files(stat_text_, has_schedstat ? &schedstat_text_ : nullptr,
                                   has_sched ? &sched_text_ : nullptr);
  if (!parsed) return ThreadRead::exited;
  parsed->facts.affinity = std::move(out.facts.affinity);
  out = std::move(*parsed);
  if (out.facts.start_time_ticks != start_time_ticks_) {
    start_time_ticks_ = out.facts.start_time_ticks;
    return ThreadRead::reused;
  }
  return ThreadRead::ok;
}

}  // namespace vcpumap::procfs
