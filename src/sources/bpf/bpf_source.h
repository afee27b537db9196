// The bpf engine of the thread-facts source: every VM thread's facts read inside the kernel
// (task_reader.h), one syscall per sample and no descriptor per thread. Command lines, which the
// kernel keeps in the process's memory, are still read from /proc, for VM candidates alone.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "sources/bpf/task_reader.h"
#include "sources/procfs/procfs.h"
#include "sources/thread_source.h"

namespace vcpumap::bpf {

class BpfSource final : public ThreadSource {
 public:
  // Loads the programs of `walker`, or of the best walker this kernel has (open-coded iterator,
  // else iter/task) when empty. The error says in one line why BPF can't be used here and what
  // would enable it.
  static Result<std::unique_ptr<BpfSource>> open(std::optional<Walker> walker);

  std::string_view name() const override { return "bpf"; }
  // The walker in use, as doctor and the benchmark say it.
  Walker walker() const { return reader_->walker(); }
  std::vector<ProcessEntry> list_processes() override;
  std::vector<std::string> read_argv(int pid) override;
  std::string read_comm(int pid) override;
  Status read_threads(std::span<const int> pids, std::vector<ThreadReading>& out) override;
  void read_tick_times(std::span<VmThread> threads, int pid) override;

 private:
  BpfSource(std::unique_ptr<TaskReader> reader, CpuSet online);
  // records_ (of the processes `pids`) converted and appended to `out`, grouped as read_threads'.
  void append_readings(std::span<const int> pids, std::vector<ThreadReading>& out);

  // Processes read per call of the open-coded walker (read_threads says why).
  static constexpr std::size_t kProcessesPerRead = 128;

  std::unique_ptr<TaskReader> reader_;
  procfs::Procfs procfs_;
  // sched_getaffinity leaves out CPUs that are not online; the kernel's mask keeps them.
  CpuSet online_;
  std::vector<TaskRecord> records_;  // one batch's, within a read
};

}  // namespace vcpumap::bpf
