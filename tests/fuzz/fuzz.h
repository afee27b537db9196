// What every fuzz target shares: its input as text, the check that fails a run (libFuzzer keeps
// the input as crash-*), and small helpers for the invariants.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace vcpumap::fuzz {

// Ends the run as a crash, naming the invariant that broke.
[[noreturn]] inline void fail(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, condition);
  std::abort();
}

// libFuzzer's bytes as the text a parser reads.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The largest decimal number written anywhere in `text` (-1 when it holds no digit), saturated at
// INT64_MAX: a parser may not give a number larger than any the text held.
inline std::int64_t largest_number(std::string_view text) {
  std::int64_t largest = -1;
  std::int64_t current = -1;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      const std::int64_t digit = c - '0';
      current = current < 0                          ? digit
                : current > (INT64_MAX - digit) / 10 ? INT64_MAX
                                                     : current * 10 + digit;
      if (current > largest) largest = current;
    } else {
      current = -1;
    }
  }
  return largest;
}

// `text` cut at its middle line break into the lines before and after it: a parser of line
// records must read the whole as it reads the two halves. False when there is no line break.
inline bool split_at_middle_line(std::string_view text, std::string_view& before,
                                 std::string_view& after) {
  const auto newline = text.find('\n', text.size() / 2);
  if (newline == std::string_view::npos) return false;
  before = text.substr(0, newline);
  after = text.substr(newline + 1);
  return true;
}

}  // namespace vcpumap::fuzz

#define FUZZ_CHECK(condition) \
  ((condition) ? static_cast<void>(0) : ::vcpumap::fuzz::fail(#condition, __FILE__, __LINE__))
