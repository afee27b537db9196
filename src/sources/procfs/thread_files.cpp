#include "sources/procfs/thread_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
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

ThreadFiles::File ThreadFiles::open_file(const char* name) {
  File file;
  if (!budget_->take()) {
    // Over budget: open it for each read, if it exists at all.
    const Fd probe = open_at(task_dir_fd_, TaskPath(tid_, name).text);
    if (probe.valid() || errno == EMFILE || errno == ENFILE) file.how = File::reopen;
    return file;
  }
  file.fd = open_at(task_dir_fd_, TaskPath(tid_, name).text);
  if (file.fd.valid()) {
    file.how = File::kept;
    return file;
  }
  if (errno == EMFILE || errno == ENFILE) file.how = File::reopen;
  budget_->give(1);
  return file;
}

void ThreadFiles::give_back() {
  if (budget_ == nullptr) return;
  std::size_t kept = 0;
  for (const File* file : {&stat_, &schedstat_, &sched_}) kept += file->fd.valid() ? 1 : 0;
  budget_->give(kept);
}

ThreadFiles::~ThreadFiles() {
  give_back();
}

ThreadFiles& ThreadFiles::operator=(ThreadFiles&& other) noexcept {
  if (this != &other) {
    give_back();
    task_dir_fd_ = other.task_dir_fd_;
    tid_ = other.tid_;
    start_time_ticks_ = other.start_time_ticks_;
    budget_ = other.budget_;
    stat_ = std::move(other.stat_);
    schedstat_ = std::move(other.schedstat_);
    sched_ = std::move(other.sched_);
  }
  return *this;
}

bool ThreadFiles::reopened() const {
  return stat_.how == File::reopen || schedstat_.how == File::reopen || sched_.how == File::reopen;
}

bool ThreadFiles::read_file(const File& file, const char* name, std::string& text) const {
  switch (file.how) {
    case File::kept:
      return read_into(file.fd.get(), text);
    case File::reopen: {
      const Fd fd = open_at(task_dir_fd_, TaskPath(tid_, name).text);
      return fd.valid() && read_into(fd.get(), text);
    }
    case File::absent:
      break;
  }
  return false;
}

std::optional<ParsedThread> ThreadFiles::read_all_files(ThreadTexts& texts) const {
  // The kernel answers ESRCH once the thread is gone; a kept fd stays bound to the old thread,
  // so a new thread with the same tid is never read through it on a live host.
  if (!read_file(stat_, "stat", texts.stat)) return std::nullopt;
  const bool has_schedstat = read_file(schedstat_, "schedstat", texts.schedstat);
  const bool has_sched = read_file(sched_, "sched", texts.sched);
  return parse_thread_files(texts.stat, has_schedstat ? &texts.schedstat : nullptr,
                            has_sched ? &texts.sched : nullptr);
}

std::optional<ThreadFiles> ThreadFiles::keep(int task_dir_fd, int tid,
                                             std::uint64_t start_time_ticks, FileBudget& budget) {
  ThreadFiles files;
  files.budget_ = &budget;
  files.task_dir_fd_ = task_dir_fd;
  files.tid_ = tid;
  files.start_time_ticks_ = start_time_ticks;
  files.stat_ = files.open_file("stat");
  if (files.stat_.how == File::absent) return std::nullopt;  // it exited: normal
  files.schedstat_ = files.open_file("schedstat");
  files.sched_ = files.open_file("sched");
  return files;
}

std::optional<ThreadFiles> ThreadFiles::open(int task_dir_fd, int tid, ParsedThread& first,
                                             ThreadTexts& texts, FileBudget& budget) {
  auto files = keep(task_dir_fd, tid, 0, budget);
  if (!files) return std::nullopt;
  auto parsed = files->read_all_files(texts);
  if (!parsed) return std::nullopt;
  files->start_time_ticks_ = parsed->facts.start_time_ticks;
  parsed->facts.affinity = std::move(first.facts.affinity);
  first = std::move(*parsed);
  return files;
}

ThreadRead ThreadFiles::read(ParsedThread& out, ThreadTexts& texts) {
  auto parsed = read_all_files(texts);
  if (!parsed) return ThreadRead::exited;
  parsed->facts.affinity = std::move(out.facts.affinity);
  out = std::move(*parsed);
  if (out.facts.start_time_ticks != start_time_ticks_) {
    start_time_ticks_ = out.facts.start_time_ticks;
    return ThreadRead::reused;
  }
  return ThreadRead::ok;
}

std::uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur;
}

}  // namespace vcpumap::procfs
