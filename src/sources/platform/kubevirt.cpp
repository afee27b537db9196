#include "sources/platform/kubevirt.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "sources/platform/kubernetes.h"
#include "sources/procfs/parse.h"
#include "util/fd.h"

namespace vcpumap::kubevirt {

namespace {

constexpr off_t kMaxStatusFile = 4 << 20;  // a status file with every device is some 100 KiB

// Reads `path` (absolute, inside the pod) below the pod's root `pod_root` as the pod would see it:
// the pod's user can write its /run, so symlinks resolve in the pod's root (RESOLVE_IN_ROOT, not
// ours), and only a regular file of sane size is read (not a FIFO that would block, nor
// /dev/zero). nullopt when it can't be read so.
std::optional<std::string> read_in_pod(const std::filesystem::path& pod_root,
                                       const std::string& path) {
  const Fd root(open(pod_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return std::nullopt;
  open_how how{};
  how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const Fd file(static_cast<int>(syscall(SYS_openat2, root.get(), path.c_str(), &how, sizeof how)));
  struct stat info {};
  if (!file.valid() || fstat(file.get(), &info) != 0 || !S_ISREG(info.st_mode) ||
      info.st_size > kMaxStatusFile) {
    return std::nullopt;
  }
  return read_all(file.get());
}

}  // namespace

std::vector<std::string> status_file_paths(std::string_view domain) {
  // libvirt's QEMU driver keeps a running domain's status in cfg->stateDir/NAME.xml
  // (virQEMUDriverConfigNew in libvirt's src/qemu/qemu_conf.c): LOCALSTATEDIR/run/libvirt/qemu
  // when privileged, else $XDG_RUNTIME_DIR/libvirt/qemu/run. virt-launcher runs virtqemud as root
  // in a root launcher, and as the qemu user with XDG_RUNTIME_DIR=/var/run in a non-root one
  // (kubevirt's pkg/virt-controller/services/rendercontainer.go, xdgEnvironmentVariables); its
  // own process monitor reads the .pid beside the status file from /run/libvirt/qemu/run or
  // /run/libvirt/qemu (cmd/virt-launcher/virt-launcher.go).
  const std::string file = fmt::format("{}.xml", domain);
  return {"/run/libvirt/qemu/run/" + file, "/run/libvirt/qemu/" + file};
}

Result<std::optional<LauncherStatus>> read_launcher_status(const std::filesystem::path& root,
                                                           int pid, std::string_view domain) {
  if (domain.empty() || domain.find('/') != std::string_view::npos || domain.starts_with('.')) {
    return std::optional<LauncherStatus>();
  }
  const auto pod_root = kubernetes::process_root(root, pid);
  for (const auto& path : status_file_paths(domain)) {
    const auto text = read_in_pod(pod_root, path);
    if (!text) continue;
    auto threads = libvirt::parse_status_xml(*text);
    if (!threads) return make_error(ExitCode::failure, "{}: {}", path, threads.error().message);
    auto definition = libvirt::parse_domain_xml(*text);
    if (!definition) return make_error(ExitCode::failure, "{}: no <domain> in it", path);
    return std::optional<LauncherStatus>(
        LauncherStatus{path, std::move(*threads), std::move(*definition)});
  }
  return std::optional<LauncherStatus>();
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
