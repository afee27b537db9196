// The call thread that bounds libvirt's calls: a job that never ends is given up in time, the
// caller goes on, and nothing waits for it afterwards.
#include <gtest/gtest.h>

#include <future>

#include "sources/libvirt/call_thread.h"

namespace vcpumap::libvirt {
namespace {

using namespace std::chrono_literals;

auto counter() {
  return std::make_shared<std::atomic<std::uint64_t>>(0);
}

TEST(CallThread, GivesTheAnswerOfAJobThatEnds) {
  CallThread thread(1000ms, counter());
  EXPECT_EQ(thread.call<int>([] { return 42; }), 42);
  EXPECT_FALSE(thread.stuck());
}

TEST(CallThread, GivesUpOnAJobThatDoesNotEndAndFailsLaterOnesAtOnce) {
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  const auto start = std::chrono::steady_clock::now();
  {
    CallThread thread(200ms, counter());
    EXPECT_EQ(thread.call<int>([released] {
      released.wait();  // a daemon that does not answer
      return 1;
    }),
              std::nullopt);
    EXPECT_TRUE(thread.stuck());
    EXPECT_EQ(thread.call<int>([] { return 2; }), std::nullopt);
  }  // destroying it does not wait for the blocked job
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  release->set_value();  // the daemon answers at last; the thread ends by itself
}

TEST(CallThread, AJobThatKeepsMakingProgressIsNotCutShort) {
  auto progress = counter();
  CallThread thread(150ms, progress);
  EXPECT_EQ(thread.call<int>([progress] {
    for (int i = 0; i < 6; ++i) {  // 6 calls of 50 ms: 300 ms in all, each well within 150 ms
      std::this_thread::sleep_for(50ms);
      progress->fetch_add(1);
    }
    return 3;
  }),
            3);
}

}  // namespace
}  // namespace vcpumap::libvirt
