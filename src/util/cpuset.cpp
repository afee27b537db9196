#include "util/cpuset.h"

#include "util/text.h"

#include <algorithm>
#include <bit>
#include <charconv>

#include <fmt/format.h>

namespace vcpumap {
namespace {

constexpr int kBits = 64;

// Parses one non-negative decimal CPU number that must fill the whole of text.
Result<int> parse_cpu_number(std::string_view text, std::string_view whole) {
  int value = 0;
  const auto* first = text.data();
  const auto* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (text.empty() || ec != std::errc() || ptr != last || value < 0) {
    return make_error(ExitCode::bad_input,
                      "'{}' is not a CPU list: '{}' is not a CPU number (write e.g. 0-3,8)", whole,
                      text);
  }
  if (value >= CpuSet::kMaxCpu) {
    return make_error(ExitCode::bad_input, "'{}' is not a CPU list: CPU {} is out of range", whole,
                      value);
  }
  return value;
}

Result<CpuSet> parse_list_impl(std::string_view text, bool allow_exclusions) {
  const std::string_view whole = text;
  text = trim(text);
  CpuSet set;
  if (text.empty()) return set;
  while (true) {
    const auto comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    bool exclude = false;
    if (!item.empty() && item.front() == '^') {
      if (!allow_exclusions) {
        return make_error(ExitCode::bad_input, "'{}' is not a CPU list: '^' is not allowed here",
                          whole);
      }
      exclude = true;
      item.remove_prefix(1);
    }
    if (item.empty()) {
      return make_error(ExitCode::bad_input,
                        "'{}' is not a CPU list: empty item (write e.g. 0-3,8)", whole);
    }
    const auto dash = item.find('-');
    auto low = parse_cpu_number(item.substr(0, dash), whole);
    if (!low) return low.error();
    int high = *low;
    if (dash != std::string_view::npos) {
      if (exclude) {
        return make_error(ExitCode::bad_input,
                          "'{}' is not a CPU list: '^' takes one CPU, not a range", whole);
      }
      auto parsed_high = parse_cpu_number(item.substr(dash + 1), whole);
      if (!parsed_high) return parsed_high.error();
      high = *parsed_high;
      if (high < *low) {
        return make_error(ExitCode::bad_input, "'{}' is not a CPU list: range '{}' runs backwards",
                          whole, item);
      }
    }
    for (int cpu = *low; cpu <= high; ++cpu) {
      if (exclude) {
        set.remove(cpu);
      } else {
        set.add(cpu);
      }
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return set;
}

}  // namespace

Result<CpuSet> CpuSet::parse_list(std::string_view text) {
  return parse_list_impl(text, false);
}

Result<CpuSet> CpuSet::parse_virsh_list(std::string_view text) {
  return parse_list_impl(text, true);
}

Result<CpuSet> CpuSet::parse_mask(std::string_view text) {
  const std::string_view whole = text;
  text = trim(text);
  CpuSet set;
  int bit = 0;
  // The mask is written most significant group first; walk it from the end.
  for (auto it = text.rbegin(); it != text.rend(); ++it) {
    const char c = *it;
    if (c == ',') continue;
    int nibble = 0;
    if (c >= '0' && c <= '9') {
      nibble = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      nibble = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      nibble = c - 'A' + 10;
    } else {
      return make_error(ExitCode::bad_input, "'{}' is not a CPU mask: unexpected '{}'", whole, c);
    }
    for (int i = 0; i < 4; ++i) {
      if (nibble & (1 << i)) {
        if (bit + i >= kMaxCpu) {
          return make_error(ExitCode::bad_input, "'{}' is not a CPU mask: too long", whole);
        }
        set.add(bit + i);
      }
    }
    bit += 4;
  }
  return set;
}

CpuSet CpuSet::first_n(int count) {
  CpuSet set;
  for (int cpu = 0; cpu < count; ++cpu) set.add(cpu);
  return set;
}

void CpuSet::add(int cpu) {
  if (cpu < 0) return;
  const auto word = static_cast<std::size_t>(cpu / kBits);
  if (words_.size() <= word) words_.resize(word + 1, 0);
  words_[word] |= std::uint64_t{1} << (cpu % kBits);
}

void CpuSet::remove(int cpu) {
  if (cpu < 0) return;
  const auto word = static_cast<std::size_t>(cpu / kBits);
  if (word >= words_.size()) return;
  words_[word] &= ~(std::uint64_t{1} << (cpu % kBits));
  drop_empty_tail();
}

bool CpuSet::contains(int cpu) const {
  if (cpu < 0) return false;
  const auto word = static_cast<std::size_t>(cpu / kBits);
  return word < words_.size() && (words_[word] >> (cpu % kBits)) & 1U;
}

bool CpuSet::empty() const {
  return words_.empty();
}

int CpuSet::count() const {
  int total = 0;
  for (auto word : words_) total += std::popcount(word);
  return total;
}

int CpuSet::end() const {
  if (words_.empty()) return 0;
  const auto last = words_.back();
  return static_cast<int>(words_.size() - 1) * kBits + (kBits - std::countl_zero(last));
}

std::vector<int> CpuSet::cpus() const {
  std::vector<int> result;
  for (std::size_t w = 0; w < words_.size(); ++w) {
    auto word = words_[w];
    while (word != 0) {
      const int bit = std::countr_zero(word);
      result.push_back(static_cast<int>(w) * kBits + bit);
      word &= word - 1;
    }
  }
  return result;
}

bool CpuSet::is_subset_of(const CpuSet& other) const {
  return (*this - other).empty();
}

CpuSet CpuSet::operator&(const CpuSet& other) const {
  CpuSet result;
  result.words_.resize(std::min(words_.size(), other.words_.size()));
  for (std::size_t i = 0; i < result.words_.size(); ++i) {
    result.words_[i] = words_[i] & other.words_[i];
  }
  result.drop_empty_tail();
  return result;
}

CpuSet CpuSet::operator|(const CpuSet& other) const {
  CpuSet result;
  result.words_.resize(std::max(words_.size(), other.words_.size()), 0);
  for (std::size_t i = 0; i < result.words_.size(); ++i) {
    const auto a = i < words_.size() ? words_[i] : 0;
    const auto b = i < other.words_.size() ? other.words_[i] : 0;
    result.words_[i] = a | b;
  }
  return result;
}

CpuSet CpuSet::operator-(const CpuSet& other) const {
  CpuSet result = *this;
  for (std::size_t i = 0; i < result.words_.size() && i < other.words_.size(); ++i) {
    result.words_[i] &= ~other.words_[i];
  }
  result.drop_empty_tail();
  return result;
}

bool CpuSet::operator==(const CpuSet& other) const {
  return words_ == other.words_;
}

std::string CpuSet::to_list() const {
  std::string text;
  const auto all = cpus();
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    while (j + 1 < all.size() && all[j + 1] == all[j] + 1) ++j;
    if (!text.empty()) text += ',';
    if (j == i) {
      text += fmt::to_string(all[i]);
    } else {
      text += fmt::format("{}-{}", all[i], all[j]);
    }
    i = j + 1;
  }
  return text;
}

std::string CpuSet::to_yn(int width) const {
  std::string text;
  text.reserve(static_cast<std::size_t>(std::max(width, 0)));
  for (int cpu = 0; cpu < width; ++cpu) text += contains(cpu) ? 'y' : '-';
  return text;
}

void CpuSet::drop_empty_tail() {
  while (!words_.empty() && words_.back() == 0) words_.pop_back();
}

}  // namespace vcpumap
