// A thread's cgroup cpuset: the CPUs its cgroup lets it use, whatever its own affinity says.
// libvirt enforces pinning twice, with sched_setaffinity and with a cpuset cgroup per vCPU
// (…/machine/qemu-N-NAME.libvirt-qemu/vcpuK), so an audit compares both.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "util/cpuset.h"

namespace vcpumap::procfs {

// Where /proc/PID/task/TID/cgroup puts a thread: its cpuset cgroup in a v1 hierarchy, and its
// cgroup in the unified (v2) hierarchy. Either may be absent.
struct CgroupMembership {
  std::optional<std::string> cpuset_v1;  // path below the v1 cpuset mount, e.g. "/machine"
  std::string cpuset_v1_controllers;     // the v1 line's controller list, e.g. "cpuset"
  std::optional<std::string> unified;    // path in the v2 hierarchy ("0::/path")
};

// A thread's effective cpuset and the cgroup that gave it.
struct CgroupCpuset {
  std::string path;  // the cgroup, as /proc/…/cgroup names it
  int version = 0;   // 1 or 2
  CpuSet cpus;
};

// Parses the text of /proc/PID/task/TID/cgroup ("3:cpuset:/machine\n0::/\n").
CgroupMembership parse_cgroup_membership(std::string_view text);

class CgroupReader {
 public:
  // `root` is the file-system root holding proc/ and sys/fs/cgroup ("/" for this machine).
  explicit CgroupReader(std::filesystem::path root);

  // The cpuset in force for one thread; nullopt when no mounted hierarchy has the cpuset
  // controller (or the thread exited).
  std::optional<CgroupCpuset> thread_cpuset(int pid, int tid) const;
  // The cpuset of a membership as read under ROOT/sys/fs/cgroup; nullopt as above.
  std::optional<CgroupCpuset> cpuset_of(const CgroupMembership& membership) const;
  // The v2 cgroup id of a membership (what BPF's bpf_get_current_cgroup_id gives: the inode of
  // its directory in cgroupfs); nullopt without a unified line or once the cgroup is gone.
  std::optional<std::uint64_t> cgroup_id(const CgroupMembership& membership) const;

 private:
  std::filesystem::path root_;
};

}  // namespace vcpumap::procfs
