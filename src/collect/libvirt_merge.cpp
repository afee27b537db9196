// Joins libvirt's domains to the VM processes found in /proc.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "collect/snapshot.h"
#include "sources/libvirt/libvirt.h"
#include "sources/libvirt/status_file.h"

namespace vcpumap {
namespace {

bool same_uuid(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The process of an active domain: libvirt passes -uuid and -name guest=NAME to QEMU.
Vm* find_process(std::vector<Vm>& vms, const LibvirtDomain& domain) {
  for (auto& vm : vms) {
    if (vm.pid > 0 && !domain.uuid.empty() && same_uuid(vm.uuid, domain.uuid)) return &vm;
  }
  for (auto& vm : vms) {
    if (vm.pid > 0 && vm.uuid.empty() && vm.name == domain.name) return &vm;
  }
  return nullptr;
}

// The note for a libvirt that could not be used. One that is not on this host at all (no daemon
// socket, no library) is said as before; one that is there but did not answer or refused says
// what the output lacks.
std::string unavailable_note(const Error& error) {
  if (error.message.starts_with("libvirt (")) {
    return fmt::format("{}: libvirt ids, states and configured pinning are missing", error.message);
  }
  return fmt::format("libvirt not used ({}); VMs are read from /proc alone", error.message);
}

// libvirt did not answer: its QEMU processes are still told apart by the status file libvirt
// writes for each (pid included), so that nothing pins them behind libvirt's back. Gives whether
// there was any.
bool mark_libvirt_processes(Snapshot& snapshot, const std::filesystem::path& root) {
  bool any = false;
  for (auto& vm : snapshot.vms) {
    if (vm.pid <= 0 || vm.hypervisor != Hypervisor::qemu || vm.name.empty()) continue;
    if (auto status = libvirt::read_status_file(root, vm.name); status && status->pid == vm.pid) {
      vm.libvirt_unanswered = true;
      any = true;
    }
  }
  return any;
}

}  // namespace

void merge_libvirt(Snapshot& snapshot, const SnapshotOptions& options) {
  std::uint64_t calls = 0;
  auto domains = [&]() -> Result<std::vector<LibvirtDomain>> {
    auto connection = libvirt::Connection::open(options.libvirt_uri, options.libvirt_timeout);
    if (!connection) return connection.error();
    auto listed = (*connection)->list_domains();
    calls = (*connection)->calls();
    return listed;
  }();
  if (!domains) {
    const bool unanswered = domains.error().message.starts_with("libvirt (");
    const bool runs_vms = mark_libvirt_processes(snapshot, options.root);
    // A host without libvirt (Firecracker, Proxmox) is told nothing each run; a libvirt asked
    // for by name (--connect), or one that runs VMs here but is away, is told what is missing.
    if (unanswered || runs_vms || !options.libvirt_uri.empty()) {
      snapshot.notes.push_back(unavailable_note(domains.error()));
    }
    if (unanswered) snapshot.libvirt_health = LibvirtHealth{false, std::nullopt, calls};
    return;
  }
  join_libvirt(snapshot, std::move(*domains));
  snapshot.libvirt_health = LibvirtHealth{true, std::chrono::system_clock::now(), calls};
}

void join_watched(Snapshot& snapshot, const libvirt::WatchedView& view) {
  if (view.absent && !view.domains) {
    // Not on this host (Firecracker, cloud-hypervisor): nothing is missing, nothing is down.
    snapshot.notes.push_back(
        fmt::format("libvirt not used ({}); VMs are read from /proc alone", view.problem));
    return;
  }
  if (view.domains) join_libvirt(snapshot, *view.domains);
  snapshot.libvirt_health = LibvirtHealth{view.up, view.last_success, view.calls};
  if (!view.up && !view.problem.empty()) {
    snapshot.notes.push_back(
        fmt::format("{}: {}", view.problem,
                    view.domains ? "libvirt's ids, states and pinning are as it last said them"
                                 : "libvirt ids, states and configured pinning are missing"));
  }
}

void join_libvirt(Snapshot& snapshot, std::vector<LibvirtDomain> domains) {
  for (auto& domain : domains) {
    Vm* vm = domain.active ? find_process(snapshot.vms, domain) : nullptr;
    if (vm == nullptr) {
      // Inactive, or active but not visible here: listed from libvirt alone, as virsh list --all.
      Vm listed;
      listed.name = domain.name;
      listed.uuid = domain.uuid;
      listed.hypervisor = Hypervisor::qemu;
      snapshot.vms.push_back(std::move(listed));
      vm = &snapshot.vms.back();
    }
    domain.pid = vm->pid;
    if (vm->name.empty()) vm->name = domain.name;
    if (vm->uuid.empty()) vm->uuid = domain.uuid;
    vm->libvirt = std::move(domain);
  }
  // virsh list --all's order: running domains by id, then the others by name.
  std::stable_sort(snapshot.vms.begin(), snapshot.vms.end(), [](const Vm& a, const Vm& b) {
    const bool a_listed_only = a.pid == 0;
    const bool b_listed_only = b.pid == 0;
    if (a_listed_only != b_listed_only) return b_listed_only;
    if (a_listed_only) return a.name < b.name;
    return false;
  });
}

void attach_watched(Snapshot& snapshot, const libvirt::WatchedView& view) {
  if (view.absent && !view.domains) return;  // not on this host
  for (auto& vm : snapshot.vms) {
    if (vm.pid > 0) vm.libvirt.reset();
  }
  if (view.domains) {
    for (const auto& domain : *view.domains) {
      if (!domain.active) continue;
      if (Vm* vm = find_process(snapshot.vms, domain)) {
        vm->libvirt = domain;
        vm->libvirt->pid = vm->pid;
      }
    }
  }
  snapshot.libvirt_health = LibvirtHealth{view.up, view.last_success, view.calls};
}

}  // namespace vcpumap
