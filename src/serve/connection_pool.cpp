#include "serve/connection_pool.h"

#include <algorithm>

namespace vcpumap::serve {

ConnectionPool::ConnectionPool(std::size_t max_connections)
    : max_connections_(std::max<std::size_t>(max_connections, 1)) {}

ConnectionPool::~ConnectionPool() {
  shutdown();
}

void ConnectionPool::enqueue(std::function<void()> connection) {
  std::unique_lock lock(mutex_);
  space_.wait(lock, [&] { return busy_ + queue_.size() < max_connections_ || shutting_down_; });
  queue_.push_back(std::move(connection));
  // Start a thread only when every existing one is busy: an idle exporter keeps few threads.
  if (threads_.size() - busy_ < queue_.size() && threads_.size() < max_connections_) {
    threads_.emplace_back([this] { work(); });
  }
  ready_.notify_one();
}

void ConnectionPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    threads.swap(threads_);
  }
  ready_.notify_all();
  space_.notify_all();
  for (auto& thread : threads) thread.join();
}

std::size_t ConnectionPool::threads_started() const {
  std::lock_guard lock(mutex_);
  return threads_.size();
}

void ConnectionPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ready_.wait(lock, [&] { return !queue_.empty() || shutting_down_; });
    if (queue_.empty()) return;  // shutting down, nothing left to serve
    auto connection = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    connection();  // httplib's: serves the requests of one connection, then closes it
    lock.lock();
    --busy_;
    space_.notify_one();
  }
}

}  // namespace vcpumap::serve
