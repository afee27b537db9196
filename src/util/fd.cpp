#include "util/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace vcpumap {

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Fd open_at(int dir, const char* path, int extra_flags) {
  return Fd(::openat(dir, path, O_RDONLY | O_CLOEXEC | extra_flags));
}

bool read_into(int fd, std::string& text) {
  if (text.capacity() < 4096) text.reserve(4096);
  std::size_t size = 0;
  while (true) {
    text.resize(text.capacity());
    const auto room = text.size() - size;
    const auto got = ::pread(fd, text.data() + size, room, static_cast<off_t>(size));
    if (got < 0) {
      if (errno == EINTR) continue;
      text.clear();
      return false;
    }
    size += static_cast<std::size_t>(got);
    if (static_cast<std::size_t>(got) < room) break;
    text.reserve(text.capacity() * 2);
  }
  text.resize(size);
  return true;
}

std::optional<std::string> read_all(int fd) {
  std::string text;
  if (!read_into(fd, text)) return std::nullopt;
  return text;
}

std::optional<std::string> read_file_at(int dir, const char* path) {
  const Fd fd = open_at(dir, path);
  if (!fd.valid()) return std::nullopt;
  return read_all(fd.get());
}

}  // namespace vcpumap
