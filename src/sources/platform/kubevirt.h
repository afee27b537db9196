// What virt-launcher's libvirt, inside a KubeVirt pod, writes about the running domain: its status
// file, read through /proc/PID/root (vCPU threads in the pod's PID namespace, configured pinning).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sources/libvirt/domain_xml.h"
#include "sources/libvirt/status_file.h"
#include "util/result.h"

namespace vcpumap::kubevirt {

// The status file of one domain as the pod's libvirt keeps it.
struct LauncherStatus {
  std::string path;                      // inside the pod: "/run/libvirt/qemu/run/NS_NAME.xml"
  libvirt::StatusThreads threads;        // ids in the pod's PID namespace
  libvirt::DomainDefinition definition;  // the live <domain> in the file
};

// The paths, inside the pod, where virt-launcher's libvirt keeps the status file of `domain`:
// the non-root launcher's first, then the root one's.
std::vector<std::string> status_file_paths(std::string_view domain);

// Reads the status file of `domain` through ROOT/proc/PID/root, PID being its QEMU: nullopt when
// there is none to read (not a launcher's layout, not a regular file), an error naming the file
// when it is there but is not a status file.
Result<std::optional<LauncherStatus>> read_launcher_status(const std::filesystem::path& root,
                                                           int pid, std::string_view domain);

// Host tid for each id, in the innermost PID namespace, of the threads `tids` of process `pid`
// (the NSpid lines of ROOT/proc/PID/task/TID/status); threads whose line is missing are left out.
std::map<int, int> host_tids_by_namespace_id(const std::filesystem::path& root, int pid,
                                             const std::vector<int>& tids);

// `ids` (id -> thread id in the pod) with each thread id made a host tid through `host_tid`;
// nullopt when one of them has no host tid.
std::optional<std::map<int, int>> to_host_tids(const std::map<int, int>& ids,
                                               const std::map<int, int>& host_tid);

}  // namespace vcpumap::kubevirt
