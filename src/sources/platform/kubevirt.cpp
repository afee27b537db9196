#include "sources/platform/kubevirt.h"

#include <fcntl.h>

#include <fmt/format.h>

#include "sources/platform/kubernetes.h"
#include "sources/procfs/parse.h"
#include "util/fd.h"

namespace vcpumap::kubevirt {

std::vector<std::string> status_file_paths(std::string_view domain) {
  // libvirt's QEMU driver keeps a running domain's status in cfg->stateDir/NAME.xml
  // (virQEMUDriverConfigNew in libvirt's src/qemu/qemu_conf.c): LOCALSTATEDIR/run/libvirt/qemu
  // when privileged, else $XDG_RUNTIME_DIR/libvirt/qemu/run. virt-launcher runs virtqemud as root
  // in a root launcher, and as the qemu user with XDG_RUNTIME_DIR=/var/run in a non-root one
  // (kubevirt's pkg/virt-controller/services/rendercontainer.go, xdgEnvironmentVariables); its
  // own process monitor reads the .pid beside the status file from /run/libvirt/qemu/run or
  // /run/libvirt/qemu (cmd/virt-launcher/virt-launcher.go). /run, not /var/run: an absolute
  // /var/run -> /run link would be resolved in our root, not the pod's.
  const std::string file = fmt::format("{}.xml", domain);
  return {"/run/libvirt/qemu/run/" + file, "/run/libvirt/qemu/" + file};
}

Result<LauncherStatus> read_launcher_status(const std::filesystem::path& root, int pid,
                                            std::string_view domain) {
  if (domain.empty() || domain.find('/') != std::string_view::npos || domain.starts_with('.')) {
    return make_error(ExitCode::failure, "no libvirt status file for a domain named '{}'", domain);
  }
  const auto pod_root = kubernetes::process_root(root, pid);
  std::vector<std::string> tried;
  for (const auto& path : status_file_paths(domain)) {
    const auto where = pod_root / path.substr(1);
    const auto text = read_file_at(AT_FDCWD, where.c_str());
    if (!text) {
      tried.push_back(path);
      continue;
    }
    auto threads = libvirt::parse_status_xml(*text);
    if (!threads) return make_error(ExitCode::failure, "{}: {}", path, threads.error().message);
    auto definition = libvirt::parse_domain_xml(*text);
    if (!definition) return make_error(ExitCode::failure, "{}: no <domain> in it", path);
    return LauncherStatus{path, std::move(*threads), std::move(*definition)};
  }
  return make_error(ExitCode::failure, "no libvirt status file in its pod at {}",
                    fmt::join(tried, " or "));
}

std::map<int, int> host_tids_by_namespace_id(const std::filesystem::path& root, int pid,
                                             const std::vector<int>& tids) {
  std::map<int, int> host_tid;
  for (const int tid : tids) {
    const auto path = root / fmt::format("proc/{}/task/{}/status", pid, tid);
    const auto text = read_file_at(AT_FDCWD, path.c_str());
    if (!text) continue;  // exited since it was listed
    if (const auto id = procfs::parse_status_nspid(*text)) host_tid[*id] = tid;
  }
  return host_tid;
}

std::optional<std::map<int, int>> to_host_tids(const std::map<int, int>& ids,
                                               const std::map<int, int>& host_tid) {
  std::map<int, int> mapped;
  for (const auto& [id, tid] : ids) {
    const auto found = host_tid.find(tid);
    if (found == host_tid.end()) return std::nullopt;
    mapped[id] = found->second;
  }
  return mapped;
}

}  // namespace vcpumap::kubevirt
