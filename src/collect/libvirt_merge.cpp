// Joins libvirt's domains to the VM processes found in /proc.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "collect/snapshot.h"
#include "sources/libvirt/libvirt.h"

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

}  // namespace

void merge_libvirt(Snapshot& snapshot, const std::string& uri) {
  auto connection = libvirt::Connection::open(uri);
  if (!connection) {
    // Explicitly asked for: say why. Found nothing to ask: libvirt is simply not on this host.
    snapshot.notes.push_back(fmt::format("libvirt not used ({}); VMs are read from /proc alone",
                                         connection.error().message));
    return;
  }
  auto domains = (*connection)->list_domains();
  if (!domains) {
    snapshot.notes.push_back(fmt::format("libvirt not used ({}); VMs are read from /proc alone",
                                         domains.error().message));
    return;
  }
  for (auto& domain : *domains) {
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

}  // namespace vcpumap
