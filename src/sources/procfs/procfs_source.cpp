#include "sources/procfs/procfs_source.h"

#include <algorithm>
#include <set>
#include <unordered_set>

#include <fmt/format.h>

namespace vcpumap::procfs {

ProcfsSource::ProcfsSource(std::filesystem::path root, bool keep_files,
                           std::optional<std::size_t> kept_file_budget)
    : procfs_(root), keep_files_(keep_files), live_(is_own_root(root)) {
  if (!keep_files_) return;
  open_file_limit_ = raise_open_file_limit();
  // A quarter of the limit, up to 1,024 descriptors, stays free for everything else the process
  // opens (HTTP clients, libvirt, discovery, the files opened per read past the budget).
  const auto reserve = std::min<std::uint64_t>(open_file_limit_ / 4, 1024);
  budget_ = FileBudget(kept_file_budget.value_or(open_file_limit_ - reserve));
}

ProcfsSource::~ProcfsSource() = default;

std::vector<ProcessEntry> ProcfsSource::list_processes() {
  std::vector<ProcessEntry> entries;
  for (const int pid : procfs_.list_pids()) entries.push_back({pid, {}, false, false});
  return entries;
}

std::vector<std::string> ProcfsSource::read_argv(int pid) {
  return procfs_.read_argv(pid);
}

std::string ProcfsSource::read_comm(int pid) {
  return procfs_.read_comm(pid).value_or("");
}

std::vector<std::string> ProcfsSource::take_notes() {
  return std::exchange(notes_, {});
}

void ProcfsSource::note_reopened(const ThreadFiles& files) {
  if (!files.reopened() || reopen_noted_) return;
  reopen_noted_ = true;
  notes_.push_back(fmt::format(
      "the open-file limit ({}) cannot keep 3 files open for every VM thread: the others' "
      "files are opened for each sample, which costs more; raise it (ulimit -n, LimitNOFILE=)",
      open_file_limit_));
}

Status ProcfsSource::read_threads(std::span<const int> pids, std::vector<ThreadReading>& out) {
  if (!keep_files_) {
    for (const int pid : pids) {
      for (auto& reading : procfs_.read_threads(pid)) out.push_back(std::move(reading));
    }
    return Ok{};
  }
  // Processes that exited give their descriptors back. One left out of this call may still run:
  // discovery asks for new VMs only, and dropping the others' files there made the next sample
  // reopen every file (every sample at top's default 2 s, which is also the discovery interval).
  const std::unordered_set<int> asked(pids.begin(), pids.end());
  std::erase_if(kept_, [&](const auto& entry) {
    if (asked.contains(entry.first) || entry.second.dir.thread_count() >= 0) return false;
    if (entry.second.dir_kept) budget_.give(1);
    return true;
  });
  for (const int pid : pids) {
    auto it = kept_.find(pid);
    if (it == kept_.end()) {
      KeptProcess process{TaskDir(procfs_.root() / "proc", pid), false, {}};
      if (!process.dir.valid()) continue;  // it exited
      process.dir_kept = budget_.take();
      if (!process.dir_kept) {
        // Past the budget the whole process is read afresh each time: nothing is kept.
        for (auto& reading : procfs_.read_threads(pid)) out.push_back(std::move(reading));
        continue;
      }
      it = kept_.emplace(pid, std::move(process)).first;
    }
    read_kept(pid, it->second, out);
  }
  return Ok{};
}

void ProcfsSource::read_kept(int pid, KeptProcess& process, std::vector<ThreadReading>& out) {
  const auto append = [&](int tid, ParsedThread& parsed) {
    ThreadReading reading{pid, tid, std::move(parsed.name), std::move(parsed.facts)};
    reading.facts.affinity = read_thread_affinity(process.dir.fd(), tid, live_);
    out.push_back(std::move(reading));
  };
  // The folder's link count is the thread count: a change means threads came or went.
  const int count = process.dir.thread_count();
  if (count < 0) return;  // the process exited
  std::set<int> opened;
  if (process.threads.empty() || count != static_cast<int>(process.threads.size())) {
    const auto listed = process.dir.list_tids();
    const std::set<int> now(listed.begin(), listed.end());
    std::erase_if(process.threads, [&](const auto& entry) { return !now.contains(entry.first); });
    for (const int tid : now) {
      if (process.threads.contains(tid)) continue;
      ParsedThread first;
      auto files = ThreadFiles::open(process.dir.fd(), tid, first, texts_, budget_);
      if (!files) continue;  // it exited since the folder was listed
      note_reopened(*files);
      append(tid, first);
      opened.insert(tid);
      process.threads.emplace(tid, std::move(*files));
    }
  }
  for (auto it = process.threads.begin(); it != process.threads.end();) {
    if (opened.contains(it->first)) {
      ++it;
      continue;
    }
    if (it->second.read(scratch_, texts_) == ThreadRead::exited) {
      it = process.threads.erase(it);
      continue;
    }
    // A reused tid reads as a new thread: its start time differs, and callers key on it.
    append(it->first, scratch_);
    ++it;
  }
}

}  // namespace vcpumap::procfs
