// A thread of its own for calls that may never return (libvirt's RPCs block until the daemon
// answers, and a stopped daemon or a socket that accepts and never answers does not): the caller
// waits a bounded time and goes on without the answer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

namespace vcpumap::libvirt {

class CallThread {
 public:
  // Waits for each job until it ends, or until `timeout` passes without `progress` moving (jobs
  // bump it after each call they make, so a job of many quick calls is not cut short).
  CallThread(std::chrono::milliseconds timeout,
             std::shared_ptr<std::atomic<std::uint64_t>> progress);
  // Lets the thread finish its queue and end. A thread stuck in a call is left to end on its own
  // (it owns everything its jobs touch), so destroying never blocks longer than `timeout`.
  ~CallThread();
  CallThread(const CallThread&) = delete;
  CallThread& operator=(const CallThread&) = delete;

  // Runs `job` on the thread. False when it did not end in time, or an earlier job never did:
  // then it may still run later, so it must capture only what it owns (values, shared_ptrs).
  bool run(std::function<void()> job);

  // Runs `call` on the thread and gives its value; nullopt when it did not end in time.
  template <typename T>
  std::optional<T> call(std::function<T()> call) {
    auto out = std::make_shared<std::optional<T>>();
    if (!run([out, call = std::move(call)] { *out = call(); })) return std::nullopt;
    return std::move(*out);
  }

  // Queues `job` without waiting for it, also when stuck (it runs if the blocked call ends).
  void post(std::function<void()> job);

  // True once a job did not end in time: every later run fails at once.
  bool stuck() const;

  struct Shared;  // opaque: the queue and what the thread owns

 private:
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace vcpumap::libvirt
