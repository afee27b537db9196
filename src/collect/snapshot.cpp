#include "collect/snapshot.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <tuple>

#include <unistd.h>

#include <fmt/format.h>

#include "collect/discovery.h"
#include "sources/procfs/procfs.h"
#include "sources/sysfs/topology.h"
#include "util/text.h"

namespace vcpumap {

std::string_view to_string(SourceChoice choice) {
  switch (choice) {
    case SourceChoice::automatic:
      return "auto";
    case SourceChoice::bpf:
      return "bpf";
    case SourceChoice::procfs:
      return "procfs";
  }
  return "auto";
}

Result<SourceChoice> parse_source_choice(std::string_view text) {
  for (const auto choice : {SourceChoice::automatic, SourceChoice::bpf, SourceChoice::procfs}) {
    if (text == to_string(choice)) return choice;
  }
  return make_error(ExitCode::bad_input, "unknown source '{}': use auto, bpf or procfs",
                    printable(text));
}

Result<Snapshot> take_snapshot(const SnapshotOptions& options) {
  std::vector<std::string> notes;
  auto source = open_thread_source(options, false, notes);
  if (!source) return source.error();
  auto snapshot = take_snapshot(options, **source);
  if (snapshot) snapshot->notes.insert(snapshot->notes.begin(), notes.begin(), notes.end());
  return snapshot;
}

Result<Snapshot> take_snapshot(const SnapshotOptions& options, ThreadSource& source,
                               std::map<int, std::vector<int>>* vhost_pids,
                               proxmox::ConfigFiles* proxmox_configs) {
  Snapshot snapshot;
  snapshot.monotonic = std::chrono::steady_clock::now();
  snapshot.wall = std::chrono::system_clock::now();
  snapshot.clock_ticks_per_second = ::sysconf(_SC_CLK_TCK);
  snapshot.source = std::string(source.name());

  std::error_code error;
  if (!std::filesystem::is_directory(options.root / "proc", error)) {
    return make_error(ExitCode::bad_input,
                      "'{}' holds no proc/ folder: --root must name a file-system root with "
                      "proc/ and sys/ (default /)",
                      options.root.string());
  }
  if (options.with_topology) {
    auto topology = read_topology(options.root);
    if (!topology) return topology.error();
    snapshot.topology = std::move(*topology);
  }
  auto found = find_vms(source, options, {}, snapshot.notes, proxmox_configs);
  if (!found) return found.error();
  for (auto& [vm, vhost] : *found) {
    if (vhost_pids != nullptr && !vhost.empty()) (*vhost_pids)[vm.pid] = std::move(vhost);
    snapshot.vms.push_back(std::move(vm));
  }
  merge_libvirt_if_asked(snapshot, options);
  return snapshot;
}

bool libvirt_asked(const SnapshotOptions& options) {
  return options.use_libvirt && procfs::is_own_root(options.root);
}

void merge_libvirt_if_asked(Snapshot& snapshot, const SnapshotOptions& options) {
  if (libvirt_asked(options)) {
    merge_libvirt(snapshot, options);
  }
}

Result<const Vm*> find_vm(const Snapshot& snapshot, std::string_view spec) {
  const auto lower = [](std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  std::vector<const Vm*> matches;
  for (const auto& vm : snapshot.vms) {
    if (!vm.name.empty() && vm.name == spec) matches.push_back(&vm);
  }
  if (matches.empty()) {
    for (const auto& vm : snapshot.vms) {
      if (!vm.uuid.empty() && lower(vm.uuid) == lower(spec)) matches.push_back(&vm);
    }
  }
  if (matches.empty()) {
    // NAMESPACE/NAME: a KubeVirt VM as kubectl names it.
    const auto slash = spec.find('/');
    for (const auto& vm : snapshot.vms) {
      if (vm.kubevirt && slash != std::string_view::npos &&
          vm.kubevirt->ns == spec.substr(0, slash) && vm.kubevirt->name == spec.substr(slash + 1)) {
        matches.push_back(&vm);
      }
    }
  }
  if (matches.empty()) {
    // A number is a libvirt domain id first (as `virsh vcpuinfo 2`), then a Proxmox VMID (as
    // `qm`), then a PID.
    if (const auto id = parse_u64(spec)) {
      for (const auto& vm : snapshot.vms) {
        if (vm.libvirt && vm.libvirt->id >= 0 &&
            static_cast<std::uint64_t>(vm.libvirt->id) == *id) {
          matches.push_back(&vm);
        }
      }
    }
  }
  if (matches.empty()) {
    if (const auto vmid = parse_u64(spec)) {
      for (const auto& vm : snapshot.vms) {
        if (vm.proxmox && static_cast<std::uint64_t>(vm.proxmox->vmid) == *vmid) {
          matches.push_back(&vm);
        }
      }
    }
  }
  if (matches.empty()) {
    if (const auto pid = parse_u64(spec)) {
      for (const auto& vm : snapshot.vms) {
        if (vm.pid > 0 && static_cast<std::uint64_t>(vm.pid) == *pid) matches.push_back(&vm);
      }
    }
  }
  if (matches.size() == 1) return matches.front();
  if (matches.size() > 1) {
    return make_error(ExitCode::bad_input,
                      "'{}' names {} VMs; name one by UUID, libvirt id, Proxmox VMID or PID (see "
                      "'vcpumap list')",
                      printable(spec), matches.size());
  }
  return make_error(ExitCode::bad_input,
                    "no VM '{}' on this host; name a VM by name, UUID, NAMESPACE/NAME (KubeVirt), "
                    "libvirt id, Proxmox VMID or PID as 'vcpumap list' shows them",
                    printable(spec));
}

}  // namespace vcpumap
