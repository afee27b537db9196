// Every VM thread's facts read inside the kernel by BPF programs (CO-RE over BTF), instead of
// three /proc files per thread: no file descriptor per thread, one syscall per sample.
// Process and thread ids are the kernel's own (the initial pid namespace's), as /proc shows them
// outside containers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/cpuset.h"
#include "util/fd.h"
#include "util/result.h"

namespace vcpumap::bpf {

// One thread, as the kernel has it now.
struct TaskRecord {
  int tgid = 0;
  int tid = 0;
  std::uint64_t start_time_ticks = 0;  // /proc stat field 22: start_boottime in USER_HZ ticks
  char state = '?';                    // stat field 3's letter (R S D T t X Z P I)
  int cpu = -1;                        // stat field 39: task_cpu()
  std::uint64_t cpu_time_ns = 0;       // se.sum_exec_runtime: schedstat field 1
  std::uint64_t run_delay_ns = 0;      // sched_info.run_delay: schedstat field 2
  std::uint64_t timeslices = 0;        // sched_info.pcount: schedstat field 3
  bool has_sched_info = false;         // false without CONFIG_SCHED_INFO: the two above are n/a
  std::uint64_t migrations = 0;        // se.nr_migrations (/proc/TID/sched)
  std::uint64_t nvcsw = 0;             // nr_voluntary_switches (/proc/TID/sched)
  std::uint64_t nivcsw = 0;            // nr_involuntary_switches (/proc/TID/sched)
  int nr_cpus_allowed = 0;
  // cpus_mask, what sched_getaffinity reads (it also leaves out CPUs that are offline now):
  // CPUs 0-255 come in the record, and a thread allowed on CPUs above is asked with
  // sched_getaffinity.
  CpuSet affinity;
  std::string comm;  // task->comm, raw bytes
};

// One process (thread-group leader).
struct ProcessRecord {
  int tgid = 0;
  std::uint64_t start_time_ticks = 0;  // as TaskRecord's
  std::string comm;
  int nr_threads = 0;
  bool kernel_thread = false;
};

// How the threads are walked.
enum class Walker {
  open_coded_iterator,  // SEC("syscall") + bpf_iter_task_new(PROC_THREADS): kernel >= 6.7
  seq_file_iterator,    // SEC("iter/task") with link_info.task.pid: kernel >= 6.1
};

// Why BPF programs (`what`) failed to load with errno `error`, in one line that says what would
// make them load: BTF, privileges, or `needs` (e.g. "kernel 6.7 or later").
Error bpf_load_error(std::string_view what, int error, std::string_view needs);

// "open-coded" or "iter/task".
const char* walker_name(Walker walker);

// Whether a walker can load and run here, and if not, why and what would enable it (one line).
struct Probe {
  bool available = false;
  std::string why;
};

// Loads the walker's programs and runs them once over this process (5-30 ms of CPU): the only
// trustworthy test (`bpftool feature probe` is wrong about tracing programs on some kernels).
Probe probe(Walker walker);

// stat field 3's letter for a task's __state and exit_state, as the kernel's task_state_index()
// and task_index_to_char() compute it.
char task_state_letter(std::uint32_t state, std::uint32_t exit_state);

// Makes the kernel count every BPF program's run time (BPF_ENABLE_STATS) while the descriptor
// is open; for measuring, as sysctl kernel.bpf_stats_enabled=1 would, without changing the host.
Result<Fd> enable_program_stats();

class TaskReader {
 public:
  // Loads the programs for this walker; the error says why in one line (no BTF, EPERM: needs root
  // or CAP_BPF+CAP_PERFMON, a kernel too old for this walker).
  static Result<std::unique_ptr<TaskReader>> open(Walker walker);
  ~TaskReader();
  TaskReader(const TaskReader&) = delete;
  TaskReader& operator=(const TaskReader&) = delete;

  // The walker this reader runs.
  Walker walker() const { return walker_; }

  // How the seq-file walker covers the processes asked: one walk per process (about 17 us of
  // syscalls each), one walk of every task on the host keeping theirs, or whichever costs less
  // for this many processes on this host (the default).
  enum class SeqFileScope { automatic, per_process, whole_system };
  // Chooses the seq-file walker's scope (the open-coded walker has one: all asked, one call).
  void set_seq_file_scope(SeqFileScope scope) { seq_file_scope_ = scope; }

  // Every thread of each process in `tgids` (distinct) into `threads`, in no particular order
  // (cleared first; its elements' storage is reused). A process that is gone, or a tid that is
  // not a process', gives no records; a thread exiting mid-walk is normal. Open-coded: one
  // BPF_PROG_TEST_RUN for up to map_capacity() threads. Seq-file: see SeqFileScope. Not
  // thread-safe.
  Status read_threads(std::span<const int> tgids, std::vector<TaskRecord>& threads);
  // read_threads into a new vector.
  Result<std::vector<TaskRecord>> read_threads(std::span<const int> tgids);

  // Every process on the host in one walk, so discovery picks VM candidates by comm.
  Result<std::vector<ProcessRecord>> list_processes();

  // Entries of each walker map as loaded now: sized to the host's threads at open(), doubled
  // (the programs loaded again) when a process or the process list outgrows them.
  std::uint32_t map_capacity() const;

  // The kernel's count of a program's CPU time and runs; it counts only while someone holds
  // BPF_ENABLE_STATS (bpf_enable_stats(BPF_STATS_RUN_TIME)), else both stay 0.
  struct ProgramStats {
    std::uint64_t run_time_ns = 0;
    std::uint64_t run_count = 0;
    std::uint64_t missed = 0;  // runs the kernel skipped because a BPF program ran on that CPU
  };
  // The kernel's count for one loaded program; nullopt if it cannot be asked.
  static std::optional<ProgramStats> program_stats(int program_fd);
  // The kernel's count for the thread-walking programs since open(); nullopt if it cannot be asked.
  std::optional<ProgramStats> thread_program_stats() const;

  struct Programs;  // the loaded skeleton (task_reader.cpp)

 private:
  TaskReader(Walker walker, std::unique_ptr<Programs> programs);
  // read_threads' walks; each appends to threads[count...], reusing elements.
  Status read_open_coded(std::span<const int> tgids, std::vector<TaskRecord>& threads,
                         std::size_t& count);
  Status read_per_process(std::span<const int> tgids, std::vector<TaskRecord>& threads,
                          std::size_t& count);
  Status read_whole_system(std::span<const int> tgids, std::vector<TaskRecord>& threads,
                           std::size_t& count);

  Walker walker_;
  SeqFileScope seq_file_scope_ = SeqFileScope::automatic;
  std::unique_ptr<Programs> programs_;
};

}  // namespace vcpumap::bpf
