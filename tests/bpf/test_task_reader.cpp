// The BPF engine against the real kernel: every walker's records equal what procfs shows for a
// frozen fake guest, gone processes give nothing, and an unprivileged caller gets one line.
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "guests.h"
#include "sources/bpf/task_reader.h"

namespace vcpumap::bpf {
namespace {

using testing::FakeGuests;

constexpr int kVcpus = 4;

// One frozen guest for the whole suite: starting it costs more than the checks.
class FrozenGuest : public ::testing::Environment {
 public:
  void SetUp() override {
    guests_ = std::make_unique<FakeGuests>(VCPUMAP_FAKE_GUEST, 1, kVcpus);
    frozen_ = !guests_->pids().empty() && guests_->freeze();
  }
  void TearDown() override { guests_.reset(); }
  static int pid() { return frozen_ ? guests_->pids().front() : -1; }

 private:
  static inline std::unique_ptr<FakeGuests> guests_;
  static inline bool frozen_ = false;
};

// Each way of walking: the open-coded iterator, and the seq-file one per process and over the
// whole system.
struct Mode {
  Walker walker;
  TaskReader::SeqFileScope scope;
  const char* name;
};
const Mode kModes[] = {
    {Walker::open_coded_iterator, TaskReader::SeqFileScope::automatic, "open_coded"},
    {Walker::seq_file_iterator, TaskReader::SeqFileScope::per_process, "seq_file_per_process"},
    {Walker::seq_file_iterator, TaskReader::SeqFileScope::whole_system, "seq_file_whole_system"},
};

class TaskReaderTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
    ASSERT_GT(FrozenGuest::pid(), 0) << "the fake guest did not start or freeze";
    auto reader = TaskReader::open(GetParam().walker);
    ASSERT_TRUE(reader) << reader.error().message;
    reader_ = std::move(*reader);
    reader_->set_seq_file_scope(GetParam().scope);
  }
  std::unique_ptr<TaskReader> reader_;
};

TEST_P(TaskReaderTest, EveryThreadEqualsProcfs) {
  const int pid = FrozenGuest::pid();
  const auto tids = testing::proc_tids(pid);
  ASSERT_EQ(tids.size(), 1U + kVcpus);
  auto records = reader_->read_threads(std::span<const int>(&pid, 1));
  ASSERT_TRUE(records) << records.error().message;
  ASSERT_EQ(records->size(), tids.size());
  for (const TaskRecord& record : *records) {
    SCOPED_TRACE("tid " + std::to_string(record.tid));
    const auto proc = testing::read_proc_thread(pid, record.tid);
    ASSERT_TRUE(proc);
    EXPECT_EQ(record.tgid, pid);
    EXPECT_EQ(record.state, proc->state);
    EXPECT_EQ(record.state, 'T');
    EXPECT_EQ(record.cpu, proc->cpu);
    EXPECT_EQ(record.start_time_ticks, proc->start_time_ticks);
    EXPECT_TRUE(record.has_sched_info);
    EXPECT_EQ(record.cpu_time_ns, proc->cpu_time_ns);
    EXPECT_EQ(record.run_delay_ns, proc->run_delay_ns);
    EXPECT_EQ(record.timeslices, proc->timeslices);
    EXPECT_EQ(record.migrations, proc->migrations);
    EXPECT_EQ(record.nvcsw, proc->nvcsw);
    EXPECT_EQ(record.nivcsw, proc->nivcsw);
    EXPECT_EQ(record.affinity.to_list(), proc->affinity.to_list());
    EXPECT_EQ(record.nr_cpus_allowed, proc->affinity.count());
    EXPECT_EQ(record.comm, proc->comm);
  }
  std::vector<int> seen;
  for (const TaskRecord& record : *records) seen.push_back(record.tid);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, tids);
}

TEST_P(TaskReaderTest, VcpuThreadsKeepTheirNames) {
  const int pid = FrozenGuest::pid();
  auto records = reader_->read_threads(std::span<const int>(&pid, 1));
  ASSERT_TRUE(records) << records.error().message;
  int vcpus = 0;
  for (const TaskRecord& record : *records) vcpus += record.comm.rfind("CPU ", 0) == 0;
  EXPECT_EQ(vcpus, kVcpus);
}

TEST_P(TaskReaderTest, GoneProcessAndThreadIdsGiveNoRecords) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // reaped: its pid names nothing now
  const int pid = FrozenGuest::pid();
  const int thread = testing::proc_tids(pid).back();  // a vCPU thread, not a process
  ASSERT_NE(thread, pid);
  const int tgids[] = {child, thread, pid};
  auto records = reader_->read_threads(tgids);
  ASSERT_TRUE(records) << records.error().message;
  EXPECT_EQ(records->size(), 1U + kVcpus);  // the guest's threads only
  for (const TaskRecord& record : *records) EXPECT_EQ(record.tgid, pid);
  // Asked again without the guest, nothing of it comes back.
  auto none = reader_->read_threads(std::span<const int>(tgids, 2));
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->empty());
}

TEST_P(TaskReaderTest, CallerVectorIsRefilled) {
  const int pid = FrozenGuest::pid();
  std::vector<TaskRecord> threads(100);
  ASSERT_TRUE(reader_->read_threads(std::span<const int>(&pid, 1), threads));
  EXPECT_EQ(threads.size(), 1U + kVcpus);
  ASSERT_TRUE(reader_->read_threads(std::span<const int>(), threads));
  EXPECT_TRUE(threads.empty());
}

TEST_P(TaskReaderTest, ListProcessesFindsTheGuest) {
  auto processes = reader_->list_processes();
  ASSERT_TRUE(processes) << processes.error().message;
  const int pid = FrozenGuest::pid();
  const auto guest =
      std::find_if(processes->begin(), processes->end(),
                   [&](const ProcessRecord& process) { return process.tgid == pid; });
  ASSERT_NE(guest, processes->end());
  EXPECT_EQ(guest->comm, "qemu-system-x86");  // TASK_COMM_LEN keeps 15 bytes
  EXPECT_EQ(guest->nr_threads, testing::proc_thread_count(pid));
  EXPECT_EQ(guest->nr_threads, 1 + kVcpus);
  EXPECT_FALSE(guest->kernel_thread);
  EXPECT_EQ(guest->start_time_ticks, testing::read_proc_thread(pid, pid)->start_time_ticks);
  // Only processes, no other threads of the guest; and kthreadd is a kernel thread.
  for (const ProcessRecord& process : *processes) {
    for (const int tid : testing::proc_tids(pid)) {
      if (tid != pid) {
        EXPECT_NE(process.tgid, tid);
      }
    }
  }
  const auto kthreadd =
      std::find_if(processes->begin(), processes->end(),
                   [](const ProcessRecord& process) { return process.tgid == 2; });
  ASSERT_NE(kthreadd, processes->end());
  EXPECT_TRUE(kthreadd->kernel_thread);
}

// Threads of this process come and go while it is read: a thread that exits mid-walk is normal,
// never an error, and the threads that stay are always there.
TEST_P(TaskReaderTest, ThreadsExitingMidWalkAreNormal) {
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop.load()) std::thread([] {}).join();
  });
  const int self = static_cast<int>(::getpid());
  std::vector<TaskRecord> threads;
  for (int round = 0; round < 200; ++round) {
    const Status status = reader_->read_threads(std::span<const int>(&self, 1), threads);
    ASSERT_TRUE(status) << status.error().message;
    const auto main_thread = std::find_if(threads.begin(), threads.end(),
                                          [&](const TaskRecord& t) { return t.tid == self; });
    EXPECT_NE(main_thread, threads.end());
    for (const TaskRecord& thread : threads) EXPECT_EQ(thread.tgid, self);
  }
  stop = true;
  churn.join();
}

TEST_P(TaskReaderTest, ProbeSaysAvailable) {
  const Probe result = probe(GetParam().walker);
  EXPECT_TRUE(result.available) << result.why;
}

INSTANTIATE_TEST_SUITE_P(Walkers, TaskReaderTest, ::testing::ValuesIn(kModes),
                         [](const auto& info) { return std::string(info.param.name); });

// More threads than the record array holds, in one call: the walk resumes at the process that
// did not fit, and every thread comes back once per time it was asked.
TEST(TaskReaderBatches, MoreThreadsThanTheArrayHolds) {
  if (::geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
  const int pid = FrozenGuest::pid();
  ASSERT_GT(pid, 0);
  auto reader = TaskReader::open(Walker::open_coded_iterator);
  ASSERT_TRUE(reader) << reader.error().message;
  const std::vector<int> tgids(70'000, pid);  // 350,000 threads, past the tgid array too
  auto records = (*reader)->read_threads(tgids);
  ASSERT_TRUE(records) << records.error().message;
  EXPECT_EQ(records->size(), tgids.size() * (1 + kVcpus));
}

// The maps are sized to the host when the reader opens. A process that then grows past them is
// still read whole: the programs are loaded again, larger, and the walk goes on.
TEST(TaskReaderBatches, ProcessOutgrowingTheMapsIsReadWhole) {
  if (::geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
  auto reader = TaskReader::open(Walker::open_coded_iterator);
  ASSERT_TRUE(reader) << reader.error().message;
  const std::uint32_t capacity = (*reader)->map_capacity();
  ASSERT_GE(capacity, 4096U);
  std::atomic<bool> stop{false};
  std::vector<std::thread> waiting;
  for (std::uint32_t i = 0; i < capacity; ++i) {
    waiting.emplace_back([&stop] {
      while (!stop.load()) stop.wait(false);
    });
  }
  const int self = ::getpid();
  const auto threads_now = testing::proc_thread_count(self);
  auto records = (*reader)->read_threads(std::span<const int>(&self, 1));
  auto processes = (*reader)->list_processes();
  stop = true;
  stop.notify_all();
  for (auto& thread : waiting) thread.join();
  ASSERT_TRUE(records) << records.error().message;
  ASSERT_TRUE(processes) << processes.error().message;
  EXPECT_GT(records->size(), capacity);
  EXPECT_GE(records->size(), static_cast<std::size_t>(threads_now));
  EXPECT_GT((*reader)->map_capacity(), capacity);
}

// Becomes nobody, keeping only CAP_BPF in the effective set when `keep_cap_bpf`; false on failure.
bool become_nobody(bool keep_cap_bpf) {
  if (::prctl(PR_SET_KEEPCAPS, 1) != 0 || ::setgroups(0, nullptr) != 0 ||
      ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
    return false;
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (keep_cap_bpf) {
    data[CAP_BPF / 32].effective = data[CAP_BPF / 32].permitted = 1U << (CAP_BPF % 32);
  }
  return ::syscall(SYS_capset, &header, data) == 0;
}

// Run as nobody in a child (and as nobody with CAP_BPF but not CAP_PERFMON, where the kernel
// answers EINVAL): open() and probe() give one line naming what is needed, and no crash.
TEST(TaskReaderPrivileges, UnprivilegedCallerGetsOneLine) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to nobody";
  for (const bool keep_cap_bpf : {false, true}) {
    for (const Walker walker : {Walker::open_coded_iterator, Walker::seq_file_iterator}) {
      SCOPED_TRACE(std::string(walker_name(walker)) + (keep_cap_bpf ? " with CAP_BPF" : ""));
      int out[2];
      ASSERT_EQ(::pipe(out), 0);
      const pid_t child = ::fork();
      if (child == 0) {
        ::close(out[0]);
        if (!become_nobody(keep_cap_bpf)) ::_exit(3);
        auto reader = TaskReader::open(walker);
        const std::string message = reader ? "opened" : reader.error().message;
        const Probe result = probe(walker);
        const std::string text = message + "\n" + (result.available ? "available" : result.why);
        if (::write(out[1], text.data(), text.size()) < 0) ::_exit(4);
        ::_exit(reader ? 1 : 0);
      }
      ::close(out[1]);
      std::string text;
      char buffer[1024];
      for (ssize_t got; (got = ::read(out[0], buffer, sizeof(buffer))) > 0;) {
        text.append(buffer, static_cast<std::size_t>(got));
      }
      ::close(out[0]);
      int status = 0;
      ASSERT_EQ(::waitpid(child, &status, 0), child);
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0) << text;
      const std::string line = text.substr(0, text.find('\n'));
      EXPECT_NE(line.find("run as root or with CAP_BPF and CAP_PERFMON"), std::string::npos)
          << line;
      EXPECT_NE(line.find(walker_name(walker)), std::string::npos) << line;
      EXPECT_EQ(text.substr(text.find('\n') + 1), line);  // probe says the same
    }
  }
}

}  // namespace
}  // namespace vcpumap::bpf

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new vcpumap::bpf::FrozenGuest);
  return RUN_ALL_TESTS();
}
