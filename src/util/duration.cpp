#include "util/duration.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "util/text.h"

namespace vcpumap {

Result<std::chrono::nanoseconds> parse_duration(std::string_view text, bool allow_zero) {
  std::size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  const std::string number(text.substr(0, unit_at));
  const std::string_view unit = text.substr(unit_at);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e9;
  if (unit == "ms") scale = 1e6;
  if (unit == "us") scale = 1e3;
  if (unit == "m" || unit == "min") scale = 60e9;
  if (unit == "h") scale = 3600e9;
  char* end = nullptr;
  const double value = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  // A week at most: longer is a typo, and it keeps the nanoseconds far inside 64 bits.
  const bool in_range = allow_zero ? value >= 0 : value > 0;
  if (scale == 0 || !in_range || end != number.c_str() + number.size() || !std::isfinite(value) ||
      value * scale > 7 * 86400e9) {
    return make_error(ExitCode::bad_input,
                      "bad duration '{}': use e.g. 50ms, 2s, 5m or 1h (a bare number is seconds)",
                      printable(text));
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(value * scale)));
}

}  // namespace vcpumap
