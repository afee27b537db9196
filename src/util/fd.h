// RAII file descriptor and whole-file reads, the only file primitives the sources use.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace vcpumap {

// Owns a file descriptor and closes it.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset();
  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// Opens `path` relative to directory fd `dir` (AT_FDCWD for absolute) read-only.
Fd open_at(int dir, const char* path, int extra_flags = 0);

// Reads a whole file from offset 0 into `text`, reusing its capacity (pread, so a kept fd can be
// re-read); false on error. One pread when the file fits: a short read from a /proc or /sys file
// means its end, as it does for a regular file, so no second call is made to see 0 bytes.
bool read_into(int fd, std::string& text);
// read_into a new string; nullopt on error.
std::optional<std::string> read_all(int fd);
// Opens `path` relative to `dir` and reads it whole; nullopt when it cannot be opened or read.
std::optional<std::string> read_file_at(int dir, const char* path);

}  // namespace vcpumap
