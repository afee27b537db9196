// libvirt's per-domain status file, ROOT/run/libvirt/qemu/<name>.xml: which thread runs which vCPU
// and I/O thread when QEMU's threads carry no names.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "util/result.h"

namespace vcpumap::libvirt {

struct StatusThreads {
  int pid = 0;                       // <domstatus pid='...'>: the QEMU process
  std::map<int, int> vcpu_tids;      // vCPU id -> thread id
  std::map<int, int> iothread_tids;  // I/O thread id -> thread id
};

// Parses a status file's text.
Result<StatusThreads> parse_status_xml(std::string_view xml);

// Reads the status file of domain `name` under `root`; an error when absent or unreadable.
Result<StatusThreads> read_status_file(const std::filesystem::path& root, std::string_view name);

}  // namespace vcpumap::libvirt
