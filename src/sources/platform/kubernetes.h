// Which Kubernetes pod a process runs in, from its cgroup path as the kubelet names pods' cgroups
// (systemd and cgroupfs drivers, cgroup v1 and v2), and the pod's own file-system root: what
// tells a KubeVirt VM's QEMU from any other.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace vcpumap::kubernetes {

// A pod's cgroup: the pod's UID and, when the path goes that deep, its container's ID.
struct PodCgroup {
  std::string pod_uid;       // "8d3c9a0e-...", dashes whatever the driver wrote
  std::string container_id;  // empty when the path ends at the pod
};

// The pod of one cgroup path: ".../kubepods-burstable-pod<UID>.slice/cri-containerd-<ID>.scope"
// (systemd driver, the UID's dashes written as '_') or "/kubepods/burstable/pod<UID>/<ID>"
// (cgroupfs driver); nullopt for a path in no pod.
std::optional<PodCgroup> parse_pod_cgroup_path(std::string_view path);

// The pod of the first line of a /proc/PID/cgroup text whose path is a pod's, any hierarchy.
std::optional<PodCgroup> parse_pod_cgroup(std::string_view cgroup_text);

// The pod process `pid` runs in, from ROOT/proc/PID/cgroup; nullopt when none or unreadable.
std::optional<PodCgroup> read_pod_cgroup(const std::filesystem::path& root, int pid);

// The root of process `pid`'s mount namespace as seen from ROOT: ROOT/proc/PID/root, where a
// pod's files (its libvirt's status files) can be read.
std::filesystem::path process_root(const std::filesystem::path& root, int pid);

}  // namespace vcpumap::kubernetes
