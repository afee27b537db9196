// CPU lists and masks (CpuSet::parse_list, parse_virsh_list, parse_mask): what users type after
// vcpupin and --cpus, and what sysfs and status files hold.
#include <fmt/format.h>

#include "fuzz.h"
#include "util/cpuset.h"

using namespace vcpumap;

namespace {

// The kernel's mask form of a set: 32-bit hex groups, most significant first ("ff,00000003").
std::string to_mask(const CpuSet& set) {
  const int groups = std::max(1, (set.end() + 31) / 32);
  std::string mask;
  for (int group = groups - 1; group >= 0; --group) {
    std::uint32_t word = 0;
    for (int bit = 0; bit < 32; ++bit) {
      if (set.contains(group * 32 + bit)) word |= std::uint32_t{1} << bit;
    }
    if (!mask.empty()) mask += ',';
    mask += fmt::format("{:08x}", word);
  }
  return mask;
}

// What every parsed set must keep.
void check_set(const CpuSet& set) {
  FUZZ_CHECK(set.end() <= CpuSet::kMaxCpu);
  const auto cpus = set.cpus();
  FUZZ_CHECK(static_cast<int>(cpus.size()) == set.count());
  FUZZ_CHECK(set.empty() == cpus.empty());
  FUZZ_CHECK(cpus.empty() || cpus.back() + 1 == set.end());
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    FUZZ_CHECK(set.contains(cpus[i]));
    FUZZ_CHECK(i == 0 || cpus[i - 1] < cpus[i]);
  }
  // Round trips: list -> parse and mask -> parse give the set back.
  const auto list = CpuSet::parse_list(set.to_list());
  FUZZ_CHECK(list.ok() && *list == set);
  const auto mask = CpuSet::parse_mask(to_mask(set));
  FUZZ_CHECK(mask.ok() && *mask == set);
  // Set algebra.
  FUZZ_CHECK((set | set) == set && (set & set) == set && (set - set).empty());
  FUZZ_CHECK(set.is_subset_of(set | CpuSet::first_n(3)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto largest = fuzz::largest_number(text);
  const auto list = CpuSet::parse_list(text);
  const auto virsh = CpuSet::parse_virsh_list(text);
  if (list) {
    // Bounds: no CPU larger than a number of the text.
    check_set(*list);
    FUZZ_CHECK(list->empty() || list->end() - 1 <= largest);
    // A kernel list is a virsh list without exclusions.
    FUZZ_CHECK(virsh.ok() && *virsh == *list);
  }
  if (virsh) {
    check_set(*virsh);
    FUZZ_CHECK(virsh->empty() || virsh->end() - 1 <= largest);
  }
  if (const auto mask = CpuSet::parse_mask(text)) {
    check_set(*mask);
    // Bounds: 4 CPUs per hex digit.
    FUZZ_CHECK(mask->end() <= 4 * static_cast<int>(size));
  }
  // Two sets from the two halves of the input: the operators agree with membership.
  const auto half = size / 2;
  const auto a = CpuSet::parse_list(text.substr(0, half));
  const auto b = CpuSet::parse_list(text.substr(half));
  if (a && b) {
    const CpuSet both = *a & *b, either = *a | *b, only_a = *a - *b;
    for (int cpu = 0; cpu <= std::max(a->end(), b->end()); ++cpu) {
      FUZZ_CHECK(both.contains(cpu) == (a->contains(cpu) && b->contains(cpu)));
      FUZZ_CHECK(either.contains(cpu) == (a->contains(cpu) || b->contains(cpu)));
      FUZZ_CHECK(only_a.contains(cpu) == (a->contains(cpu) && !b->contains(cpu)));
    }
    FUZZ_CHECK(both.is_subset_of(*a) && a->is_subset_of(either));
    FUZZ_CHECK(both.end() <= either.end());
  }
  return 0;
}
