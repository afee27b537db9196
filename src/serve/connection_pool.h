// The worker threads behind the HTTP server, with a cap on connections served at once.
// cpp-httplib hands each accepted connection to a TaskQueue; its own pool queues without bound,
// so a flood of connections would hold unbounded file descriptors and memory. This one runs at
// most `max_connections` at once; while that many are in hand, enqueue() blocks the accept loop,
// and further clients wait in the kernel's listen backlog.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vcpumap::serve {

class ConnectionPool : public httplib::TaskQueue {
 public:
  // Threads are started on demand, up to `max_connections` (at least 1).
  explicit ConnectionPool(std::size_t max_connections);
  ~ConnectionPool() override;

  // Runs `connection` on a worker; waits while `max_connections` are already in hand.
  void enqueue(std::function<void()> connection) override;
  // Lets queued connections finish, then joins the workers.
  void shutdown() override;

  // Threads started so far (never more than max_connections).
  std::size_t threads_started() const;

 private:
  void work();

  const std::size_t max_connections_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;  // a connection waits, or shutting down
  std::condition_variable space_;  // a connection finished
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::size_t busy_ = 0;
  bool shutting_down_ = false;
};

}  // namespace vcpumap::serve
