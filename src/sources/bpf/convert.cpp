#include "sources/bpf/convert.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <memory>

namespace vcpumap::bpf {
namespace {

// Thread `tid`'s whole mask, from sched_getaffinity (which the record's 256 CPUs equal where
// both cover); false when the thread has gone.
bool affinity_from_kernel(int tid, CpuSet& cpus) {
  struct MaskDeleter {
    void operator()(cpu_set_t* mask) const { CPU_FREE(mask); }
  };
  // CpuSet::kMaxCpu bits (8 KiB): more than any kernel's nr_cpu_ids, so EINVAL cannot happen.
  const std::unique_ptr<cpu_set_t, MaskDeleter> mask(CPU_ALLOC(CpuSet::kMaxCpu));
  if (!mask) return false;
  const auto size = CPU_ALLOC_SIZE(CpuSet::kMaxCpu);
  CPU_ZERO_S(size, mask.get());
  if (::sched_getaffinity(tid, size, mask.get()) != 0) return false;
  cpus = CpuSet();
  constexpr int kBits = 8 * sizeof(mask->__bits[0]);
  const int words = static_cast<int>(size / sizeof(mask->__bits[0]));
  for (int word = 0; word < words; ++word) {
    for (auto bits = mask->__bits[word]; bits != 0; bits &= bits - 1) {
      cpus.add(word * kBits + std::countr_zero(bits));
    }
  }
  return true;
}

}  // namespace

char task_state_letter(std::uint32_t state, std::uint32_t exit_state) {
  // include/linux/sched.h: the reported bits, TASK_IDLE, and the states reported as 'D'.
  constexpr std::uint32_t kTaskUninterruptible = 0x0002;
  constexpr std::uint32_t kTaskReport = 0x007f;  // S D T t X Z P
  constexpr std::uint32_t kTaskReportIdle = kTaskReport + 1;
  constexpr std::uint32_t kTaskIdle = kTaskUninterruptible | 0x0400;  // | TASK_NOLOAD
  constexpr std::uint32_t kTaskRtlockWait = 0x1000;
  constexpr std::uint32_t kTaskFrozen = 0x8000;
  std::uint32_t reported = (state | exit_state) & kTaskReport;
  if ((state & kTaskIdle) == kTaskIdle) reported = kTaskReportIdle;
  if ((state & kTaskRtlockWait) != 0 || (state & kTaskFrozen) != 0) {
    reported = kTaskUninterruptible;
  }
  // task_index_to_char(fls(reported)).
  constexpr char kLetters[] = "RSDTtXZPI";
  return kLetters[32 - std::countl_zero(reported)];
}

RecordConverter::RecordConverter() {
  const long hz = ::sysconf(_SC_CLK_TCK);
  ns_per_tick_ = hz > 0 ? 1'000'000'000ULL / static_cast<std::uint64_t>(hz) : 10'000'000ULL;
}

bool RecordConverter::convert(const vcpumap_task_record& raw, bool has_sched_info,
                              TaskRecord& record) {
  record.tgid = raw.tgid;
  record.tid = raw.tid;
  record.start_time_ticks = raw.start_boottime_ns / ns_per_tick_;
  record.state = task_state_letter(raw.state, raw.exit_state);
  record.cpu = raw.cpu;
  record.cpu_time_ns = raw.sum_exec_runtime;
  record.has_sched_info = has_sched_info;
  record.run_delay_ns = raw.run_delay;
  record.timeslices = raw.pcount;
  record.migrations = raw.nr_migrations;
  record.nvcsw = raw.nvcsw;
  record.nivcsw = raw.nivcsw;
  record.nr_cpus_allowed = raw.nr_cpus_allowed;
  record.comm.assign(raw.comm, ::strnlen(raw.comm, sizeof(raw.comm)));
  int in_record = 0;
  for (const auto word : raw.cpus_mask) in_record += std::popcount(word);
  // nr_cpus_allowed is cpus_mask's weight: CPUs missing from the record are above 255.
  if (in_record < raw.nr_cpus_allowed) return affinity_from_kernel(raw.tid, record.affinity);
  // The threads of a VM mostly share a mask: copying the last set reuses the record's storage.
  if (!std::equal(std::begin(raw.cpus_mask), std::end(raw.cpus_mask), last_mask_)) {
    last_affinity_ = CpuSet();
    for (int word = 0; word < VCPUMAP_MASK_WORDS; ++word) {
      for (auto bits = raw.cpus_mask[word]; bits != 0; bits &= bits - 1) {
        last_affinity_.add(word * 64 + std::countr_zero(bits));
      }
    }
    std::copy(std::begin(raw.cpus_mask), std::end(raw.cpus_mask), last_mask_);
  }
  record.affinity = last_affinity_;
  return true;
}

ProcessRecord RecordConverter::process(const vcpumap_process_record& raw) const {
  constexpr std::uint32_t kPfKthread = 0x00200000;  // include/linux/sched.h
  return ProcessRecord{raw.tgid, raw.start_boottime_ns / ns_per_tick_,
                       std::string(raw.comm, ::strnlen(raw.comm, sizeof(raw.comm))), raw.nr_threads,
                       (raw.task_flags & kPfKthread) != 0};
}

}  // namespace vcpumap::bpf
