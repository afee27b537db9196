// /proc/PID/task/TID/cgroup (procfs::parse_cgroup_membership): "ID:CONTROLLERS:PATH" lines.
#include "fuzz.h"
#include "sources/procfs/cgroup.h"

using namespace vcpumap;

namespace {

bool same(const procfs::CgroupMembership& a, const procfs::CgroupMembership& b) {
  return a.cpuset_v1 == b.cpuset_v1 && a.cpuset_v1_controllers == b.cpuset_v1_controllers &&
         a.unified == b.unified;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto membership = procfs::parse_cgroup_membership(text);
  // Bounds: paths and controllers are text of one line; the controllers name cpuset.
  for (const auto* path : {&membership.cpuset_v1, &membership.unified}) {
    if (!*path) continue;
    FUZZ_CHECK((*path)->find('\n') == std::string::npos);
    FUZZ_CHECK(text.find(**path) != std::string_view::npos);
  }
  FUZZ_CHECK(membership.cpuset_v1.has_value() == !membership.cpuset_v1_controllers.empty());
  FUZZ_CHECK(membership.cpuset_v1_controllers.empty() ||
             membership.cpuset_v1_controllers.find("cpuset") != std::string::npos);
  FUZZ_CHECK(membership.cpuset_v1_controllers.find(':') == std::string::npos);
  // Lines are read in order, the last of a kind winning: the whole reads as its halves, the
  // second over the first.
  std::string_view before, after;
  if (!fuzz::split_at_middle_line(text, before, after)) return 0;
  auto combined = procfs::parse_cgroup_membership(before);
  const auto second = procfs::parse_cgroup_membership(after);
  if (second.cpuset_v1) {
    combined.cpuset_v1 = second.cpuset_v1;
    combined.cpuset_v1_controllers = second.cpuset_v1_controllers;
  }
  if (second.unified) combined.unified = second.unified;
  FUZZ_CHECK(same(combined, membership));
  return 0;
}
