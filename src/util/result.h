// The one error policy: expected failures travel as Result<T>; exceptions are for the fatal only,
// caught in main.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/core.h>

namespace vcpumap {

// Exit statuses a user can rely on.
enum class ExitCode : int {
  ok = 0,
  failure = 1,   // the command ran and found a problem, or an operation failed
  bad_input = 2  // the user named something that does not exist or cannot be parsed
};

// Why something failed, in one line a user can act on.
struct Error {
  std::string message;
  ExitCode exit_code = ExitCode::failure;
};

// Builds an Error from a fmt format string.
template <typename... Args>
Error make_error(ExitCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...), code};
}

// A value or the Error that prevented it.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

// A Result for operations that give nothing back.
struct Ok {};
using Status = Result<Ok>;

}  // namespace vcpumap
