#include "serve/acceptor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace vcpumap::serve {

Acceptor::Acceptor(Fd listener, std::size_t cap, const std::atomic<std::size_t>& open,
                   HandOver hand_over)
    : listener_(std::move(listener)),
      wake_(eventfd(0, EFD_CLOEXEC)),
      cap_(cap),
      open_(open),
      hand_over_(std::move(hand_over)),
      thread_([this] { run(); }) {}

Acceptor::~Acceptor() {
  const std::uint64_t one = 1;
  // An eventfd write of 1 can't fail short of a bad fd; without the eventfd the loop polls on.
  [[maybe_unused]] const auto written = write(wake_.get(), &one, sizeof one);
  thread_.join();
}

void Acceptor::run() {
  pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  for (;;) {
    const int ready = poll(fds, 2, -1);
    if (ready < 0 && errno != EINTR) return;
    if (fds[1].revents != 0 || !wake_.valid()) return;
    for (;;) {
      sockaddr_storage peer{};
      socklen_t length = sizeof peer;
      const int socket = accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &length,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (socket < 0) {
        // Out of descriptors: wait a little for connections to close, rather than spin on a
        // listen queue that stays readable.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          pollfd wake = {wake_.get(), POLLIN, 0};
          if (poll(&wake, 1, 50) > 0) return;
        }
        break;  // EAGAIN: the queue is empty; ECONNABORTED and the like: that client left
      }
      if (open_.load() >= cap_) {
        close(socket);
        ++refused_;
        continue;
      }
      hand_over_(socket, reinterpret_cast<const sockaddr*>(&peer), length);
    }
  }
}

}  // namespace vcpumap::serve
