#include "sources/qmp/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "util/fd.h"

namespace vcpumap::qmp {
namespace {

using Clock = std::chrono::steady_clock;

// QMP sends one JSON object per line; events may arrive between replies.
class LineReader {
 public:
  LineReader(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}

  Result<std::string> next_line(const std::string& socket_path) {
    while (true) {
      if (const auto newline = buffer_.find('\n'); newline != std::string::npos) {
        auto line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      pollfd poller{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&poller, 1, static_cast<int>(left.count())) <= 0) {
        return make_error(ExitCode::failure, "QMP socket {} did not answer in time", socket_path);
      }
      char chunk[4096];
      const auto got = ::read(fd_, chunk, sizeof chunk);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        return make_error(ExitCode::failure, "QMP socket {} closed the connection", socket_path);
      }
      buffer_.append(chunk, static_cast<std::size_t>(got));
      if (buffer_.size() > (16U << 20)) {
        return make_error(ExitCode::failure, "QMP socket {} sent an overlong reply", socket_path);
      }
    }
  }

 private:
  int fd_;
  Clock::time_point deadline_;
  std::string buffer_;
};

// Sends a command and returns the text of its reply, skipping asynchronous events.
Result<std::string> execute(int fd, LineReader& reader, const std::string& socket_path,
                            std::string_view command) {
  std::string line = fmt::format("{{\"execute\": \"{}\"}}\n", command);
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    return make_error(ExitCode::failure, "cannot write to QMP socket {}: {}", socket_path,
                      std::strerror(errno));
  }
  while (true) {
    auto reply = reader.next_line(socket_path);
    if (!reply) return reply;
    if (reply->find("\"event\"") != std::string::npos &&
        reply->find("\"return\"") == std::string::npos) {
      continue;
    }
    return reply;
  }
}

// A JSON integer from `low` to INT_MAX; nullopt for any other value. get<int>() would cut
// 4294967297 to the thread id 1.
std::optional<int> int_at_least(const nlohmann::json& value, int low) {
  if (value.is_number_unsigned()) {
    const auto number = value.get<std::uint64_t>();
    if (number >= static_cast<std::uint64_t>(std::max(low, 0)) && number <= INT_MAX) {
      return static_cast<int>(number);
    }
  } else if (value.is_number_integer()) {
    const auto number = value.get<std::int64_t>();
    if (number >= low && number <= INT_MAX) return static_cast<int>(number);
  }
  return std::nullopt;
}

}  // namespace

Result<std::map<int, int>> parse_query_cpus_fast(std::string_view reply) {
  const auto json = nlohmann::json::parse(reply, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return make_error(ExitCode::failure, "QMP reply is not JSON");
  }
  if (json.contains("error")) {
    // value() throws on anything but an object, and desc need not be a string.
    const auto& error = json["error"];
    const auto desc = error.is_object() ? error.find("desc") : error.end();
    return make_error(ExitCode::failure, "QMP refused query-cpus-fast: {}",
                      desc != error.end() && desc->is_string() ? desc->get<std::string>()
                                                               : std::string("no description"));
  }
  if (!json.contains("return") || !json["return"].is_array()) {
    return make_error(ExitCode::failure, "QMP reply has no \"return\" list");
  }
  std::map<int, int> threads;
  for (const auto& cpu : json["return"]) {
    if (!cpu.is_object()) continue;
    const auto index = cpu.find("cpu-index");
    const auto thread = cpu.find("thread-id");
    if (index == cpu.end() || thread == cpu.end()) continue;
    const auto vcpu = int_at_least(*index, 0);
    const auto tid = int_at_least(*thread, 1);
    if (vcpu && tid) threads[*vcpu] = *tid;
  }
  return threads;
}

Result<std::map<int, int>> query_vcpu_threads(const std::string& socket_path,
                                              std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof address.sun_path) {
    return make_error(ExitCode::bad_input, "QMP socket path '{}' is too long", socket_path);
  }
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() ||
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return make_error(ExitCode::bad_input, "cannot connect to QMP socket '{}': {}", socket_path,
                      std::strerror(errno));
  }
  LineReader reader(fd.get(), Clock::now() + timeout);
  auto greeting = reader.next_line(socket_path);  // {"QMP": {...}}
  if (!greeting) return greeting.error();
  if (auto reply = execute(fd.get(), reader, socket_path, "qmp_capabilities"); !reply) {
    return reply.error();
  }
  auto reply = execute(fd.get(), reader, socket_path, "query-cpus-fast");
  if (!reply) return reply.error();
  return parse_query_cpus_fast(*reply);
}

}  // namespace vcpumap::qmp
