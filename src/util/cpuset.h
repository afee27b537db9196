// A set of host CPU numbers, with the list syntaxes of the kernel ("0-3,8") and virsh ("0-3,^2").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace vcpumap {

class CpuSet {
 public:
  CpuSet() = default;

  // Largest CPU number accepted when parsing; beyond it a list is malformed, not a huge set.
  static constexpr int kMaxCpu = 1 << 16;

  // Parses a kernel CPU list such as "0-3,8,10-11" (empty text gives an empty set).
  static Result<CpuSet> parse_list(std::string_view text);
  // Parses virsh's syntax: a kernel list where "^N" removes N from what came before.
  static Result<CpuSet> parse_virsh_list(std::string_view text);
  // Parses a kernel hex mask as in /sys/.../cpumap or status's Cpus_allowed ("ff,00000003").
  static Result<CpuSet> parse_mask(std::string_view text);
  // The set {0, ..., count-1}.
  static CpuSet first_n(int count);

  void add(int cpu);
  void remove(int cpu);
  bool contains(int cpu) const;
  bool empty() const;
  int count() const;
  // One past the highest CPU in the set (0 when empty).
  int end() const;
  std::vector<int> cpus() const;

  bool is_subset_of(const CpuSet& other) const;
  CpuSet operator&(const CpuSet& other) const;
  CpuSet operator|(const CpuSet& other) const;
  CpuSet operator-(const CpuSet& other) const;
  bool operator==(const CpuSet& other) const;

  // The kernel's list form: "0-3,8" ("" when empty).
  std::string to_list() const;
  // virsh's affinity string: one 'y' or '-' for each CPU below width.
  std::string to_yn(int width) const;

 private:
  void drop_empty_tail();
  std::vector<std::uint64_t> words_;
};

}  // namespace vcpumap
