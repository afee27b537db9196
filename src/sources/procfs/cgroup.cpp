#include "sources/procfs/cgroup.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "util/text.h"

namespace vcpumap::procfs {
namespace {

std::optional<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The CPU list in the first of `files` that exists in `dir`; an empty list counts (a v1 cpuset
// not yet configured) as absent, since no task could run in it.
std::optional<CpuSet> read_cpus(const std::filesystem::path& dir,
                                std::initializer_list<const char*> files) {
  for (const char* file : files) {
    auto text = read_text(dir / file);
    if (!text) continue;
    auto cpus = CpuSet::parse_list(trim(*text));
    if (cpus && !cpus->empty()) return *cpus;
  }
  return std::nullopt;
}

// "/a/b" relative to a mount point (a leading "/" would make it absolute).
std::filesystem::path below(const std::filesystem::path& mount, const std::string& path) {
  std::string_view relative = path;
  while (!relative.empty() && relative.front() == '/') relative.remove_prefix(1);
  return relative.empty() ? mount : mount / relative;
}

}  // namespace

CgroupMembership parse_cgroup_membership(std::string_view text) {
  CgroupMembership membership;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    // cgroups(7): "hierarchy-ID:controller-list:cgroup-path"; the path may itself hold ':'.
    const auto first = line.find(':');
    if (first == std::string_view::npos) continue;
    const auto second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const auto id = line.substr(0, first);
    const auto controllers = line.substr(first + 1, second - first - 1);
    const std::string path(line.substr(second + 1));
    if (id == "0" && controllers.empty()) {
      membership.unified = path;
      continue;
    }
    std::string_view rest = controllers;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      if (rest.substr(0, comma) == "cpuset") {
        membership.cpuset_v1 = path;
        membership.cpuset_v1_controllers = std::string(controllers);
        break;
      }
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return membership;
}

CgroupReader::CgroupReader(std::filesystem::path root) : root_(std::move(root)) {}

std::optional<CgroupCpuset> CgroupReader::thread_cpuset(int pid, int tid) const {
  const auto text = read_text(root_ / fmt::format("proc/{}/task/{}/cgroup", pid, tid));
  if (!text) return std::nullopt;
  return cpuset_of(parse_cgroup_membership(*text));
}

std::optional<CgroupCpuset> CgroupReader::cpuset_of(const CgroupMembership& membership) const {
  const auto cgroup_fs = root_ / "sys/fs/cgroup";
  // The kernel binds a controller to one hierarchy only: a v1 cpuset line means v2 has none.
  if (membership.cpuset_v1) {
    // Mounted as …/cpuset, or under its joint name (…/cpu,cpuset) on some distributions.
    for (const auto& mount : {membership.cpuset_v1_controllers, std::string("cpuset")}) {
      // v1 names the effective list cpuset.effective_cpus (kernels since 4.x), else cpus only.
      if (auto cpus = read_cpus(below(cgroup_fs / mount, *membership.cpuset_v1),
                                {"cpuset.effective_cpus", "cpuset.cpus"})) {
        return CgroupCpuset{*membership.cpuset_v1, 1, *cpus};
      }
    }
    return std::nullopt;
  }
  if (!membership.unified) return std::nullopt;
  // Hybrid hosts mount v2 at …/unified, pure v2 hosts at /sys/fs/cgroup itself. A cgroup where
  // cpuset is not enabled has no cpuset files and runs on its parent's: walk up.
  for (const auto& mount : {cgroup_fs / "unified", cgroup_fs}) {
    std::filesystem::path cgroup = *membership.unified;
    while (true) {
      if (auto cpus =
              read_cpus(below(mount, cgroup.string()), {"cpuset.cpus.effective", "cpuset.cpus"})) {
        return CgroupCpuset{*membership.unified, 2, *cpus};
      }
      if (!cgroup.has_relative_path()) break;
      cgroup = cgroup.parent_path();
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> CgroupReader::cgroup_id(const CgroupMembership& membership) const {
  if (!membership.unified) return std::nullopt;
  const auto cgroup_fs = root_ / "sys/fs/cgroup";
  // Hybrid hosts mount v2 at …/unified; there the inode is that hierarchy's, as BPF's id is.
  for (const auto& mount : {cgroup_fs / "unified", cgroup_fs}) {
    struct stat info {};
    if (::stat(below(mount, *membership.unified).c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
      return info.st_ino;
    }
  }
  return std::nullopt;
}

}  // namespace vcpumap::procfs
