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

std::optional<std::string> read_all(int fd) {
  std::string text;
  char buffer[4096];
  off_t offset = 0;
  while (true) {
    const auto got = ::pread(fd, buffer, sizeof buffer, offset);
    if (got < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (got == 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
    offset += got;
  }
  return text;
}

std::optional<std::string> read_file_at(int dir, const char* path) {
  const Fd fd = open_at(dir, path);
  if (!fd.valid()) return std::nullopt;
  return read_all(fd.get());
}

}  // namespace vcpumap
