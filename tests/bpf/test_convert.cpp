// RecordConverter over made-up records: stat's letter for each kernel state, the tick
// conversion, and the affinity of a thread allowed on CPUs past the record's 256.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>

#include "sources/bpf/convert.h"

namespace vcpumap::bpf {
namespace {

TEST(TaskStateLetter, AsTheKernelReportsIt) {
  struct Case {
    std::uint32_t state, exit_state;
    char letter;
  };
  // include/linux/sched.h's bits; what fs/proc/array.c prints for them.
  const Case cases[] = {
      {0x0000, 0, 'R'},     // TASK_RUNNING
      {0x0001, 0, 'S'},     // TASK_INTERRUPTIBLE
      {0x0002, 0, 'D'},     // TASK_UNINTERRUPTIBLE
      {0x0102, 0, 'D'},     // TASK_KILLABLE
      {0x0104, 0, 'T'},     // TASK_STOPPED
      {0x0008, 0, 't'},     // TASK_TRACED
      {0x0080, 0x10, 'X'},  // TASK_DEAD, EXIT_DEAD
      {0x0080, 0x20, 'Z'},  // TASK_DEAD, EXIT_ZOMBIE
      {0x0040, 0, 'P'},     // TASK_PARKED
      {0x0402, 0, 'I'},     // TASK_IDLE
      {0x8000, 0, 'D'},     // TASK_FROZEN
      {0x1000, 0, 'D'},     // TASK_RTLOCK_WAIT
      {0x0200, 0, 'R'},     // TASK_WAKING is not reported
      {0x2001, 0, 'S'},     // TASK_FREEZABLE | TASK_INTERRUPTIBLE
  };
  for (const Case& c : cases) {
    EXPECT_EQ(task_state_letter(c.state, c.exit_state), c.letter) << std::hex << c.state;
  }
}

vcpumap_task_record raw_record() {
  vcpumap_task_record raw;
  std::memset(&raw, 0, sizeof(raw));
  raw.tgid = static_cast<int>(::getpid());
  raw.tid = static_cast<int>(::gettid());
  std::memcpy(raw.comm, "CPU 0/KVM", 10);
  return raw;
}

TEST(RecordConverter, FieldsAndTicks) {
  vcpumap_task_record raw = raw_record();
  raw.start_boottime_ns = 123'456'789'012ULL;
  raw.state = 0x0104;  // TASK_STOPPED
  raw.cpu = 1;
  raw.sum_exec_runtime = 5;
  raw.run_delay = 6;
  raw.pcount = 7;
  raw.nr_cpus_allowed = 3;
  raw.cpus_mask[0] = 1;                       // CPU 0
  raw.cpus_mask[1] = std::uint64_t{1} << 6;   // CPU 70
  raw.cpus_mask[3] = std::uint64_t{1} << 63;  // CPU 255
  RecordConverter converter;
  TaskRecord record;
  ASSERT_TRUE(converter.convert(raw, true, record));
  // nsec_to_clock_t with USER_HZ = sysconf(_SC_CLK_TCK).
  EXPECT_EQ(record.start_time_ticks,
            123'456'789'012ULL / (1'000'000'000ULL / ::sysconf(_SC_CLK_TCK)));
  EXPECT_EQ(record.state, 'T');
  EXPECT_EQ(record.cpu, 1);
  EXPECT_EQ(record.cpu_time_ns, 5U);
  EXPECT_EQ(record.run_delay_ns, 6U);
  EXPECT_EQ(record.timeslices, 7U);
  EXPECT_EQ(record.affinity.to_list(), "0,70,255");
  EXPECT_EQ(record.comm, "CPU 0/KVM");
}

// More CPUs allowed than the record holds: the mask is asked from the kernel for that thread.
TEST(RecordConverter, WiderMasksAreAskedFromTheKernel) {
  vcpumap_task_record raw = raw_record();
  raw.cpus_mask[0] = 1;
  raw.nr_cpus_allowed = 300;  // as on a host with CPUs above 255
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(::sched_getaffinity(0, sizeof(mask), &mask), 0);
  CpuSet expected;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &mask)) expected.add(cpu);
  }
  RecordConverter converter;
  TaskRecord record;
  ASSERT_TRUE(converter.convert(raw, true, record));
  EXPECT_EQ(record.affinity.to_list(), expected.to_list());
  // A thread that has gone meanwhile gives no record.
  raw.tid = 0x3fffffff;
  EXPECT_FALSE(converter.convert(raw, true, record));
}

TEST(RecordConverter, Process) {
  vcpumap_process_record raw;
  std::memset(&raw, 0, sizeof(raw));
  raw.tgid = 2;
  raw.nr_threads = 1;
  raw.task_flags = 0x00200000;  // PF_KTHREAD
  std::memcpy(raw.comm, "kthreadd", 9);
  const ProcessRecord process = RecordConverter().process(raw);
  EXPECT_EQ(process.tgid, 2);
  EXPECT_EQ(process.comm, "kthreadd");
  EXPECT_EQ(process.nr_threads, 1);
  EXPECT_TRUE(process.kernel_thread);
}

}  // namespace
}  // namespace vcpumap::bpf
