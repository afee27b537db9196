#include "sources/bpf/task_reader.h"

#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>

#include <bpf/bpf.h>

#include "sources/bpf/convert.h"
#include "sources/bpf/loaders.h"
#include "sources/bpf/records.h"
#include "util/fd.h"

namespace vcpumap::bpf {
namespace {

std::string kernel_release() {
  struct utsname name {};
  if (::uname(&name) != 0) return "unknown";
  return name.release;
}

// Whether this process may load and run the programs: CAP_SYS_ADMIN, or CAP_BPF (maps, syscall
// programs) with CAP_PERFMON (tracing programs, reading kernel memory). With CAP_BPF alone the
// kernel answers EINVAL, not EPERM, so this is asked rather than guessed from the error.
bool has_bpf_privileges() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return ::geteuid() == 0;
  const auto effective = [&](int capability) {
    return (data[capability / 32].effective >> (capability % 32)) & 1U;
  };
  return effective(CAP_SYS_ADMIN) || (effective(CAP_BPF) && effective(CAP_PERFMON));
}

// The entries of each walker map at first: room for every thread the host has now and a quarter
// more, at least 4096. A host that outgrows it gets the programs loaded again, twice as large.
static_assert(VCPUMAP_MAX_TGIDS == VCPUMAP_MAX_THREADS &&
                  VCPUMAP_MAX_THREADS == VCPUMAP_MAX_PROCESSES,
              "one capacity sizes all three maps");
std::uint32_t initial_capacity() {
  std::uint64_t threads = 0;  // /proc/loadavg's "running/total" field: the kernel's nr_threads
  std::ifstream loadavg("/proc/loadavg");
  std::string load1, load5, load15, tasks;
  if (loadavg >> load1 >> load5 >> load15 >> tasks) {
    if (const auto slash = tasks.find('/'); slash != std::string::npos) {
      std::from_chars(tasks.data() + slash + 1, tasks.data() + tasks.size(), threads);
    }
  }
  const std::uint64_t wanted = std::max<std::uint64_t>(4096, threads + threads / 4 + 1024);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(wanted, VCPUMAP_MAX_THREADS));
}

Error load_error(Walker walker, int error) {
  return bpf_load_error(
      walker_name(walker), error,
      walker == Walker::open_coded_iterator ? "kernel 6.7 or later" : "kernel 6.1 or later");
}

// An mmapped BPF array map (BPF_F_MMAPABLE), unmapped on destruction. The kernel maps every page
// of the range at mmap time (remap_vmalloc_range), so all of it would count in our RSS at once:
// only the prefix in use is mapped, grown as the records need it.
class MappedArray {
 public:
  MappedArray() = default;
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;
  ~MappedArray() { unmap(); }

  // Binds to array map `fd` of `max_entries` values of `value_size` bytes, mapping nothing yet.
  void bind(int fd, std::size_t value_size, std::size_t max_entries, int protection) {
    unmap();
    fd_ = fd;
    protection_ = protection;
    // The kernel lays array elements out at round_up(value_size, 8) (kernel/bpf/arraymap.c).
    stride_ = (value_size + 7) & ~std::size_t{7};
    page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    capacity_ = round_up(stride_ * max_entries);
  }
  // The first `entries` elements, mapped (at least twice what was mapped before, to grow
  // rarely); nullptr with errno set on failure.
  template <typename T>
  T* first(std::size_t entries) {
    const std::size_t bytes =
        std::min(capacity_, round_up(std::max<std::size_t>(entries, 1) * stride_));
    if (bytes > size_) {
      const std::size_t grown = std::min(capacity_, std::max(bytes, 2 * size_));
      void* base = ::mmap(nullptr, grown, protection_, MAP_SHARED, fd_, 0);
      if (base == MAP_FAILED) return nullptr;
      unmap();
      base_ = base;
      size_ = grown;
    }
    return static_cast<T*>(base_);
  }

 private:
  std::size_t round_up(std::size_t bytes) const { return (bytes + page_ - 1) / page_ * page_; }
  void unmap() {
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = nullptr;
    size_ = 0;
  }

  int fd_ = -1;
  int protection_ = PROT_READ;
  std::size_t stride_ = 8, page_ = 4096, capacity_ = 0;
  void* base_ = nullptr;
  std::size_t size_ = 0;
};

// Appends `raw` to `threads` at `count`, reusing an element already there.
void append(RecordConverter& converter, const vcpumap_task_record& raw, bool has_sched_info,
            std::vector<TaskRecord>& threads, std::size_t& count) {
  if (count == threads.size()) threads.emplace_back();
  if (converter.convert(raw, has_sched_info, threads[count])) ++count;
}

// An iter/task link of `program` over process `pid`'s threads, or over every task when pid is 0.
// A process that has gone gives an Error whose exit_code is ok (the caller skips it).
Result<Fd> attach_iterator(int program, int pid) {
  union bpf_iter_link_info link_info;
  std::memset(&link_info, 0, sizeof(link_info));
  link_info.task.pid = static_cast<std::uint32_t>(pid);
  LIBBPF_OPTS(bpf_link_create_opts, options);
  if (pid != 0) {
    options.iter_info = &link_info;
    options.iter_info_len = sizeof(link_info);
  }
  Fd link(bpf_link_create(program, 0, BPF_TRACE_ITER, &options));
  if (link.valid()) return link;
  if (pid != 0 && (errno == ESRCH || errno == ENOENT)) return Error{"gone", ExitCode::ok};
  if (pid != 0) {
    return make_error(ExitCode::failure, "BPF iter/task: cannot walk process {}: {}", pid,
                      std::strerror(errno));
  }
  return make_error(ExitCode::failure, "BPF iter/task: cannot walk the host's tasks: {}",
                    std::strerror(errno));
}

// Reads an iterator's seq file to its end into `bytes` (reusing its capacity).
Status read_iterator(int link_fd, std::string& bytes, const char* what) {
  bytes.clear();
  Fd iterator(bpf_iter_create(link_fd));
  if (!iterator.valid()) {
    return make_error(ExitCode::failure, "BPF iter/task: cannot start a walk of {}: {}", what,
                      std::strerror(errno));
  }
  constexpr std::size_t kChunk = 64 * 1024;
  for (;;) {
    const std::size_t used = bytes.size();
    bytes.resize(used + kChunk);
    const ssize_t got = ::read(iterator.get(), bytes.data() + used, kChunk);
    if (got < 0 && errno == EINTR) {
      bytes.resize(used);
      continue;
    }
    if (got < 0) {
      bytes.resize(used);
      return make_error(ExitCode::failure, "BPF iter/task: reading the walk of {} failed: {}", what,
                        std::strerror(errno));
    }
    bytes.resize(used + static_cast<std::size_t>(got));
    if (got == 0) return Ok{};
  }
}

Error mmap_error() {
  return make_error(ExitCode::failure, "BPF open-coded: cannot mmap its record arrays: {}",
                    std::strerror(errno));
}

// Whether one walk of every task on the host costs less than a walk per asked process. Measured
// here: a per-process walk costs 14-17 us in syscalls (link, iterator, two reads, closes); the
// whole-system walk 0.2-0.3 us for each task it skips. sysinfo's `procs` is the kernel's count of
// tasks (threads), not of processes.
bool whole_system_is_cheaper(std::span<const int> tgids) {
  constexpr std::size_t kSkippedTasksPerProcessWalk = 50;
  struct sysinfo host {};
  if (::sysinfo(&host) != 0) return false;
  return tgids.size() * kSkippedTasksPerProcessWalk > host.procs;
}

}  // namespace

Error bpf_load_error(std::string_view what, int error, std::string_view needs) {
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return make_error(ExitCode::failure,
                      "BPF {}: the kernel has no BTF (/sys/kernel/btf/vmlinux); it needs a kernel "
                      "built with CONFIG_DEBUG_INFO_BTF",
                      what);
  }
  if (error == EPERM || error == EACCES || !has_bpf_privileges()) {
    return make_error(ExitCode::failure,
                      "BPF {}: loading BPF programs needs root or CAP_BPF and CAP_PERFMON ({}); "
                      "run as root or with CAP_BPF and CAP_PERFMON",
                      what, std::strerror(error));
  }
  return make_error(ExitCode::failure, "BPF {}: the programs did not load on kernel {} ({}); {}",
                    what, kernel_release(), std::strerror(error), needs);
}

const char* walker_name(Walker walker) {
  return walker == Walker::open_coded_iterator ? "open-coded" : "iter/task";
}

// The loaded programs of one walker and the maps they write.
struct TaskReader::Programs {
  Programs() = default;
  Programs(const Programs&) = delete;
  Programs& operator=(const Programs&) = delete;
  ~Programs() {
    vcpumap_destroy_syscall_programs(&syscall);
    vcpumap_destroy_seq_programs(&seq);
  }

  vcpumap_syscall_programs syscall{};  // open-coded walker
  MappedArray tgids, threads, processes;
  std::uint32_t capacity = 0;  // entries of each walker map as loaded
  vcpumap_seq_programs seq{};  // seq-file walker
  std::string bytes;           // the seq file's text, reused
  std::vector<int> wanted;     // what seq's `wanted` map holds, sorted
  RecordConverter converter;

  // Loads the open-coded walker with maps of `entries` (again, if loaded); 0 or a negative errno.
  int load_syscall(std::uint32_t entries) {
    vcpumap_destroy_syscall_programs(&syscall);
    syscall = {};
    if (const int error = vcpumap_load_syscall_programs(&syscall, entries); error != 0)
      return error;
    capacity = entries;
    tgids.bind(syscall.tgids, sizeof(std::uint64_t), entries, PROT_READ | PROT_WRITE);
    threads.bind(syscall.threads, sizeof(vcpumap_task_record), entries, PROT_READ);
    processes.bind(syscall.processes, sizeof(vcpumap_process_record), entries, PROT_READ);
    return 0;
  }

  // Loads the open-coded walker again with maps twice as large, if they are not at their
  // largest; whether it did. A failure leaves them as they were unloaded: the caller fails.
  Result<bool> grow_syscall() {
    if (capacity >= VCPUMAP_MAX_THREADS) return false;
    const auto entries = std::min<std::uint32_t>(2 * capacity, VCPUMAP_MAX_THREADS);
    if (const int error = load_syscall(entries); error != 0) {
      return load_error(Walker::open_coded_iterator, -error);
    }
    return true;
  }

  // Makes seq's `wanted` map hold exactly `tgids` (sorted, distinct), changing only what differs.
  Status sync_wanted(const std::vector<int>& tgids) {
    std::vector<int> gone, added;
    std::set_difference(wanted.begin(), wanted.end(), tgids.begin(), tgids.end(),
                        std::back_inserter(gone));
    std::set_difference(tgids.begin(), tgids.end(), wanted.begin(), wanted.end(),
                        std::back_inserter(added));
    const int map = seq.wanted;
    auto n = static_cast<std::uint32_t>(gone.size());
    // A stale entry left by a failure only costs records that append_seq_records drops.
    if (n > 0 && bpf_map_delete_batch(map, gone.data(), &n, nullptr) != 0 && errno != ENOENT) {
      return make_error(ExitCode::failure, "BPF iter/task: cannot update its process set: {}",
                        std::strerror(errno));
    }
    const std::vector<std::uint8_t> values(added.size(), 1);
    n = static_cast<std::uint32_t>(added.size());
    if (n > 0 && bpf_map_update_batch(map, added.data(), values.data(), &n, nullptr) != 0) {
      wanted.clear();  // some may be in: the next call inserts them all again
      return make_error(ExitCode::failure, "BPF iter/task: cannot update its process set: {}",
                        std::strerror(errno));
    }
    wanted = tgids;
    return Ok{};
  }
};

TaskReader::TaskReader(Walker walker, std::unique_ptr<Programs> programs)
    : walker_(walker), programs_(std::move(programs)) {}

TaskReader::~TaskReader() = default;

Result<std::unique_ptr<TaskReader>> TaskReader::open(Walker walker) {
  auto programs = std::make_unique<Programs>();
  const std::uint32_t capacity = initial_capacity();
  if (walker == Walker::open_coded_iterator) {
    if (const int error = programs->load_syscall(capacity); error != 0) {
      return load_error(walker, -error);
    }
  } else if (const int error = vcpumap_load_seq_programs(&programs->seq, capacity); error != 0) {
    return load_error(walker, -error);
  } else {
    programs->capacity = capacity;
  }
  return std::unique_ptr<TaskReader>(new TaskReader(walker, std::move(programs)));
}

Status TaskReader::read_threads(std::span<const int> tgids, std::vector<TaskRecord>& threads) {
  std::size_t count = 0;
  Status status = Ok{};
  if (walker_ == Walker::open_coded_iterator) {
    status = read_open_coded(tgids, threads, count);
  } else if (seq_file_scope_ == SeqFileScope::per_process ||
             (seq_file_scope_ == SeqFileScope::automatic && !whole_system_is_cheaper(tgids))) {
    status = read_per_process(tgids, threads, count);
  } else {
    status = read_whole_system(tgids, threads, count);
  }
  if (!status) return status;
  threads.resize(count);
  return Ok{};
}

Status TaskReader::read_open_coded(std::span<const int> tgids, std::vector<TaskRecord>& threads,
                                   std::size_t& count) {
  Programs& p = *programs_;
  // Batches of the tgid array's size; within one, a run stops before a process that does not fit
  // in the thread array, and the next run starts from it. A process larger than the whole array
  // gets the programs loaded again with larger maps, and the batch begins again from it.
  for (std::size_t batch = 0; batch < tgids.size(); batch += p.capacity) {
    const std::size_t batch_size = std::min<std::size_t>(p.capacity, tgids.size() - batch);
    auto* slots = p.tgids.first<std::uint64_t>(batch_size);
    if (slots == nullptr) return mmap_error();
    for (std::size_t i = 0; i < batch_size; ++i) {
      slots[i] = static_cast<std::uint32_t>(tgids[batch + i]);
    }
    std::uint32_t first = 0;
    while (first < batch_size) {
      auto* bss = p.syscall.state;
      bss->first_tgid = first;
      bss->nr_tgids = static_cast<std::uint32_t>(batch_size) - first;
      LIBBPF_OPTS(bpf_test_run_opts, run);
      if (bpf_prog_test_run_opts(p.syscall.read_threads, &run) != 0) {
        return make_error(ExitCode::failure, "BPF open-coded: running the walk failed: {}",
                          std::strerror(errno));
      }
      const bool has_sched_info = bss->has_sched_info != 0;
      const auto* records = p.threads.first<const vcpumap_task_record>(bss->nr_records);
      if (records == nullptr) return mmap_error();
      // Grown by doubling: reserve() of exactly what is needed would copy the whole vector on
      // every call (86 calls for 350,000 threads with 4,096-entry maps).
      if (count + bss->nr_records > threads.capacity()) {
        threads.reserve(std::max<std::size_t>(count + bss->nr_records, 2 * threads.capacity()));
      }
      for (std::uint32_t i = 0; i < bss->nr_records; ++i) {
        append(p.converter, records[i], has_sched_info, threads, count);
      }
      if (bss->next_tgid != first) {
        first = bss->next_tgid;
        continue;
      }
      const int too_large = tgids[batch + first];
      auto grown = p.grow_syscall();
      if (!grown) return grown.error();
      if (!*grown) {
        return make_error(ExitCode::failure,
                          "BPF open-coded: process {} has more than {} threads; read it with "
                          "--source procfs",
                          too_large, VCPUMAP_MAX_THREADS);
      }
      // The tgid array is new and larger: this batch goes on from the process that did not fit.
      return read_open_coded(tgids.subspan(batch + first), threads, count);
    }
  }
  return Ok{};
}

// The seq file's records of the processes in `tgids` (sorted), appended to threads[count...].
void append_seq_records(TaskReader::Programs& p, std::span<const int> sorted_tgids,
                        std::vector<TaskRecord>& threads, std::size_t& count) {
  const std::size_t n = p.bytes.size() / sizeof(vcpumap_task_record);
  const bool has_sched_info = p.seq.state->has_sched_info != 0;
  for (std::size_t i = 0; i < n; ++i) {
    vcpumap_task_record record;  // the string's bytes need not be aligned for the struct
    std::memcpy(&record, p.bytes.data() + i * sizeof(record), sizeof(record));
    if (std::binary_search(sorted_tgids.begin(), sorted_tgids.end(), record.tgid)) {
      append(p.converter, record, has_sched_info, threads, count);
    }
  }
}

Status TaskReader::read_per_process(std::span<const int> tgids, std::vector<TaskRecord>& threads,
                                    std::size_t& count) {
  Programs& p = *programs_;
  for (const int tgid : tgids) {
    auto link = attach_iterator(p.seq.emit_thread, tgid);
    if (!link && link.error().exit_code == ExitCode::ok) continue;  // the process has gone
    if (!link) return link.error();
    const std::string what = fmt::format("process {}", tgid);
    if (const Status status = read_iterator(link->get(), p.bytes, what.c_str()); !status) {
      return status;
    }
    append_seq_records(p, std::span<const int>(&tgid, 1), threads, count);
  }
  return Ok{};
}

Status TaskReader::read_whole_system(std::span<const int> tgids, std::vector<TaskRecord>& threads,
                                     std::size_t& count) {
  Programs& p = *programs_;
  std::vector<int> asked(tgids.begin(), tgids.end());
  std::sort(asked.begin(), asked.end());
  asked.erase(std::unique(asked.begin(), asked.end()), asked.end());
  if (asked.size() > p.capacity) return read_per_process(tgids, threads, count);
  if (const Status status = p.sync_wanted(asked); !status) return status;
  auto link = attach_iterator(p.seq.emit_wanted_thread, 0);
  if (!link) return link.error();
  if (const Status status = read_iterator(link->get(), p.bytes, "the host's threads"); !status) {
    return status;
  }
  append_seq_records(p, asked, threads, count);
  return Ok{};
}

std::uint32_t TaskReader::map_capacity() const {
  return programs_->capacity;
}

Result<std::vector<TaskRecord>> TaskReader::read_threads(std::span<const int> tgids) {
  std::vector<TaskRecord> threads;
  if (const Status status = read_threads(tgids, threads); !status) return status.error();
  return threads;
}

Result<std::vector<ProcessRecord>> TaskReader::list_processes() {
  Programs& p = *programs_;
  std::vector<ProcessRecord> processes;
  if (walker_ == Walker::open_coded_iterator) {
    for (;;) {
      LIBBPF_OPTS(bpf_test_run_opts, run);
      if (bpf_prog_test_run_opts(p.syscall.list_processes, &run) != 0) {
        return make_error(ExitCode::failure, "BPF open-coded: listing processes failed: {}",
                          std::strerror(errno));
      }
      if (p.syscall.state->processes_truncated == 0) break;
      auto grown = p.grow_syscall();  // the host has outgrown the maps: larger ones, from the top
      if (!grown) return grown.error();
      if (!*grown) {
        return make_error(ExitCode::failure,
                          "BPF open-coded: more than {} processes; list them with --source procfs",
                          VCPUMAP_MAX_PROCESSES);
      }
    }
    const auto* records =
        p.processes.first<const vcpumap_process_record>(p.syscall.state->nr_processes);
    if (records == nullptr) return mmap_error();
    processes.reserve(p.syscall.state->nr_processes);
    for (std::uint32_t i = 0; i < p.syscall.state->nr_processes; ++i) {
      processes.push_back(p.converter.process(records[i]));
    }
    return processes;
  }
  auto link = attach_iterator(p.seq.emit_process, 0);
  if (!link) return link.error();
  if (const Status status = read_iterator(link->get(), p.bytes, "every process"); !status) {
    return status.error();
  }
  const std::size_t n = p.bytes.size() / sizeof(vcpumap_process_record);
  processes.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    vcpumap_process_record record;
    std::memcpy(&record, p.bytes.data() + i * sizeof(record), sizeof(record));
    processes.push_back(p.converter.process(record));
  }
  return processes;
}

std::optional<TaskReader::ProgramStats> TaskReader::program_stats(int program_fd) {
  struct bpf_prog_info info;
  std::memset(&info, 0, sizeof(info));
  std::uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(program_fd, &info, &length) != 0) return std::nullopt;
  return ProgramStats{info.run_time_ns, info.run_cnt, info.recursion_misses};
}

std::optional<TaskReader::ProgramStats> TaskReader::thread_program_stats() const {
  std::vector<int> programs;
  if (walker_ == Walker::open_coded_iterator) {
    programs = {programs_->syscall.read_threads};
  } else {
    programs = {programs_->seq.emit_thread, programs_->seq.emit_wanted_thread};
  }
  ProgramStats stats;
  for (const int program : programs) {
    const auto one = program_stats(program);
    if (!one) return std::nullopt;
    stats.run_time_ns += one->run_time_ns;
    stats.run_count += one->run_count;
    stats.missed += one->missed;
  }
  return stats;
}

Result<Fd> enable_program_stats() {
  Fd stats(bpf_enable_stats(BPF_STATS_RUN_TIME));
  if (!stats.valid()) {
    return make_error(ExitCode::failure, "BPF_ENABLE_STATS failed: {}", std::strerror(errno));
  }
  return stats;
}

Probe probe(Walker walker) {
  auto reader = TaskReader::open(walker);
  if (!reader) return Probe{false, reader.error().message};
  // Loading is not enough: the walk must find this very thread.
  const int self = static_cast<int>(::getpid());
  auto threads = (*reader)->read_threads(std::span<const int>(&self, 1));
  if (!threads) return Probe{false, threads.error().message};
  const bool found = std::any_of(threads->begin(), threads->end(),
                                 [&](const TaskRecord& thread) { return thread.tid == self; });
  if (!found) {
    return Probe{false, fmt::format("BPF {}: the programs loaded but did not see this process",
                                    walker_name(walker))};
  }
  return Probe{true, fmt::format("BPF {} loads and reads threads", walker_name(walker))};
}

}  // namespace vcpumap::bpf
