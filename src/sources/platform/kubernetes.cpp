#include "sources/platform/kubernetes.h"

#include <fcntl.h>

#include <algorithm>

#include <fmt/format.h>

#include "util/fd.h"

namespace vcpumap::kubernetes {
namespace {

// A pod UID as the kubelet writes it: hex digits and dashes (or '_' for dashes in systemd units).
std::optional<std::string> pod_uid(std::string_view text, bool systemd) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string uid;
  for (const char c : text) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
      uid += c;
    } else if (c == '-' || (systemd && c == '_')) {
      uid += '-';
    } else {
      return std::nullopt;
    }
  }
  return uid;
}

// The container id in the component after the pod's: "cri-containerd-<ID>.scope",
// "crio-<ID>.scope", "docker-<ID>.scope" (systemd) or "<ID>" (cgroupfs).
std::string container_id(std::string_view component) {
  if (component.ends_with(".scope")) {
    component.remove_suffix(6);
    const auto dash = component.rfind('-');
    if (dash != std::string_view::npos) component.remove_prefix(dash + 1);
  }
  const bool hex =
      !component.empty() && std::all_of(component.begin(), component.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      });
  return hex ? std::string(component) : std::string();
}

}  // namespace

std::optional<PodCgroup> parse_pod_cgroup_path(std::string_view path) {
  bool in_kubepods = false;
  std::optional<PodCgroup> pod;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const auto component = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    if (component.empty()) continue;
    if (pod) {
      pod->container_id = container_id(component);
      break;
    }
    if (component == "kubepods" || component.starts_with("kubepods.") ||
        component.starts_with("kubepods-")) {
      in_kubepods = true;
    }
    if (!in_kubepods) continue;
    std::optional<std::string> uid;
    if (component.starts_with("kubepods-") && component.ends_with(".slice")) {
      // systemd: kubepods-pod<UID>.slice, kubepods-<qos>-pod<UID>.slice
      const auto at = component.find("-pod");
      if (at != std::string_view::npos) {
        const auto rest = component.substr(at + 4, component.size() - at - 4 - 6);
        uid = pod_uid(rest, true);
      }
    } else if (component.starts_with("pod")) {
      uid = pod_uid(component.substr(3), false);  // cgroupfs: pod<UID>
    }
    if (uid) pod = PodCgroup{std::move(*uid), {}};
  }
  return pod;
}

std::optional<PodCgroup> parse_pod_cgroup(std::string_view cgroup_text) {
  while (!cgroup_text.empty()) {
    const auto end = cgroup_text.find('\n');
    const auto line = cgroup_text.substr(0, end);
    cgroup_text = end == std::string_view::npos ? std::string_view{} : cgroup_text.substr(end + 1);
    // cgroups(7): "hierarchy-ID:controller-list:cgroup-path"
    const auto first = line.find(':');
    if (first == std::string_view::npos) continue;
    const auto second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    if (auto pod = parse_pod_cgroup_path(line.substr(second + 1))) return pod;
  }
  return std::nullopt;
}

std::optional<PodCgroup> read_pod_cgroup(const std::filesystem::path& root, int pid) {
  const auto path = root / fmt::format("proc/{}/cgroup", pid);
  const auto text = read_file_at(AT_FDCWD, path.c_str());
  if (!text) return std::nullopt;
  return parse_pod_cgroup(*text);
}

std::filesystem::path process_root(const std::filesystem::path& root, int pid) {
  return root / fmt::format("proc/{}/root", pid);
}

}  // namespace vcpumap::kubernetes
