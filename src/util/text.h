// Small text helpers shared by parsers and views.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vcpumap {

// A name made safe for a terminal: control bytes and bytes that are not UTF-8 become \n, \xNN.
std::string printable(std::string_view name);

// Parses a whole unsigned decimal number; nullopt when text is anything else.
std::optional<std::uint64_t> parse_u64(std::string_view text);
// Parses a whole signed decimal number; nullopt when text is anything else.
std::optional<std::int64_t> parse_i64(std::string_view text);

// Text with leading and trailing blanks (space, tab, newline) removed.
std::string_view trim(std::string_view text);

}  // namespace vcpumap
