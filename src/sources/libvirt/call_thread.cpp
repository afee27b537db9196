#include "sources/libvirt/call_thread.h"

#include <condition_variable>
#include <deque>
#include <mutex>

namespace vcpumap::libvirt {

// Everything the thread touches: it holds its own reference, so a caller that gave up (or the
// CallThread itself) may go away while a call is still blocked.
struct CallThread::Shared {
  std::mutex mutex;
  std::condition_variable work;  // the thread waits for jobs
  std::condition_variable done;  // callers wait for their job, the destructor for the end
  std::deque<std::function<void()>> jobs;
  std::uint64_t submitted = 0;
  std::uint64_t finished = 0;
  bool stopping = false;
  bool stuck = false;
  bool exited = false;
  std::chrono::milliseconds timeout;
  std::shared_ptr<std::atomic<std::uint64_t>> progress;
};

namespace {

void serve_jobs(const std::shared_ptr<CallThread::Shared>& shared) {
  std::unique_lock lock(shared->mutex);
  for (;;) {
    shared->work.wait(lock, [&] { return shared->stopping || !shared->jobs.empty(); });
    if (shared->jobs.empty()) break;  // stopping, and nothing left to do
    {
      auto job = std::move(shared->jobs.front());
      shared->jobs.pop_front();
      lock.unlock();
      job();
      // `job` (and what it captured, e.g. the last reference to a connection) ends here, on
      // this thread, before the lock is taken again.
    }
    lock.lock();
    ++shared->finished;
    shared->done.notify_all();
  }
  shared->exited = true;
  shared->done.notify_all();
}

}  // namespace

CallThread::CallThread(std::chrono::milliseconds timeout,
                       std::shared_ptr<std::atomic<std::uint64_t>> progress)
    : shared_(std::make_shared<Shared>()) {
  shared_->timeout = timeout;
  shared_->progress = std::move(progress);
  thread_ = std::thread([shared = shared_] { serve_jobs(shared); });
}

CallThread::~CallThread() {
  std::unique_lock lock(shared_->mutex);
  shared_->stopping = true;
  shared_->work.notify_all();
  const bool ended = !shared_->stuck && shared_->done.wait_for(lock, shared_->timeout,
                                                               [&] { return shared_->exited; });
  lock.unlock();
  if (ended) {
    thread_.join();
  } else {
    // Blocked in a call that may never return: the process must not wait for it. The thread
    // ends by itself if the call ever does; at exit the kernel ends it.
    thread_.detach();
  }
}

bool CallThread::run(std::function<void()> job) {
  std::unique_lock lock(shared_->mutex);
  if (shared_->stuck) return false;
  shared_->jobs.push_back(std::move(job));
  const std::uint64_t mine = ++shared_->submitted;
  shared_->work.notify_all();
  auto seen = shared_->progress->load();
  auto deadline = std::chrono::steady_clock::now() + shared_->timeout;
  while (shared_->finished < mine) {
    if (shared_->done.wait_until(lock, deadline) != std::cv_status::timeout) continue;
    const auto now_progress = shared_->progress->load();
    if (now_progress != seen) {  // still answering, just many calls
      seen = now_progress;
      deadline = std::chrono::steady_clock::now() + shared_->timeout;
      continue;
    }
    if (shared_->finished >= mine) break;
    shared_->stuck = true;
    return false;
  }
  return true;
}

void CallThread::post(std::function<void()> job) {
  std::lock_guard lock(shared_->mutex);
  shared_->jobs.push_back(std::move(job));
  ++shared_->submitted;
  shared_->work.notify_all();
}

bool CallThread::stuck() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->stuck;
}

}  // namespace vcpumap::libvirt
