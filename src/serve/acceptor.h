// The exporter's accept loop: takes every connection off the listen queue at once and either
// hands it to the HTTP server or, when `cap` connections are already open, closes it there and
// then. libmicrohttpd left alone stops accepting at its limit, so new clients would queue in the
// kernel's backlog, behind the hostile ones, and a scrape would wait with them.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>

#include "util/fd.h"

namespace vcpumap::serve {

class Acceptor {
 public:
  // Gets an accepted, non-blocking socket and its peer's address, and owns it from then on.
  using HandOver = std::function<void(int socket, const sockaddr* peer, socklen_t length)>;

  // Starts accepting on `listener` (a listening, non-blocking socket). `open` counts the
  // connections the server holds now (`hand_over` counts them in, the server out).
  Acceptor(Fd listener, std::size_t cap, const std::atomic<std::size_t>& open, HandOver hand_over);
  // Stops accepting and closes the listening socket.
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Connections closed at once because `cap` were open.
  std::uint64_t refused() const { return refused_.load(); }

 private:
  void run();

  Fd listener_;
  Fd wake_;  // an eventfd: written once to stop
  const std::size_t cap_;
  const std::atomic<std::size_t>& open_;
  HandOver hand_over_;
  std::atomic<std::uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace vcpumap::serve
