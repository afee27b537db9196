// The one grammar for durations a user types: record -d/-i, audit --watch, top's d key.
#pragma once

#include <chrono>
#include <string_view>

#include "util/result.h"

namespace vcpumap {

// Parses "50ms", "2s", "1.5s", "5m", "1h", "250us"; a bare number is seconds. Zero is taken only
// when `allow_zero` (audit --watch 0: no watch). The error names the input and the grammar.
Result<std::chrono::nanoseconds> parse_duration(std::string_view text, bool allow_zero = false);

}  // namespace vcpumap
