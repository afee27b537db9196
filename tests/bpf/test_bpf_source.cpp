// The bpf engine behind the thread-facts interface, against the real kernel: over more processes
// than one read of the open-coded walker takes, every thread comes back once, grouped by process
// in the order asked, as procfs lists them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "guests.h"
#include "sources/bpf/bpf_source.h"

namespace vcpumap::bpf {
namespace {

TEST(BpfSourceBatches, ProcessesPastOneReadComeBackGroupedInTheOrderAsked) {
  if (::geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
  // 300 processes: three reads of 128 at most (BpfSource::kProcessesPerRead is private; the
  // count is past any batch size under 300).
  testing::FakeGuests guests(VCPUMAP_FAKE_GUEST, 300, 1);
  ASSERT_EQ(guests.pids().size(), 300U) << "the fake guests did not start";
  ASSERT_TRUE(guests.freeze());
  auto source = BpfSource::open(Walker::open_coded_iterator);
  ASSERT_TRUE(source) << source.error().message;
  // Asked in reverse pid order, so grouping cannot come from the kernel's own order.
  std::vector<int> pids(guests.pids().rbegin(), guests.pids().rend());
  std::vector<ThreadReading> readings;
  ASSERT_TRUE((*source)->read_threads(pids, readings));

  std::vector<int> order;  // each process once, in the order its readings came
  std::vector<int> expected_tids, tids;
  for (const auto& reading : readings) {
    if (order.empty() || order.back() != reading.pid) order.push_back(reading.pid);
    tids.push_back(reading.tid);
  }
  EXPECT_EQ(order, pids);
  for (const int pid : pids) {
    const auto listed = testing::proc_tids(pid);
    expected_tids.insert(expected_tids.end(), listed.begin(), listed.end());
  }
  EXPECT_EQ(tids, expected_tids);
}

}  // namespace
}  // namespace vcpumap::bpf
