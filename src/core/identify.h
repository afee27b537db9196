// Tells VM processes and their threads apart by argv and thread names. Pure logic: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model.h"

namespace vcpumap {

// What a process's command line says about the VM it runs.
struct VmIdentity {
  Hypervisor hypervisor = Hypervisor::qemu;
  std::string name;
  std::string uuid;
  bool debug_threads = false;  // QEMU named its threads (-name ...,debug-threads=on)
  int proxmox_vmid = -1;       // Proxmox VE's VMID (its QEMU's -id), -1 when not given
};

// The VM a process runs, from its argv (argv[0]'s base name decides the hypervisor); nullopt
// when the process is not a VM.
std::optional<VmIdentity> identify_vm(const std::vector<std::string>& argv);

// The namespace and name in a KubeVirt domain name "NAMESPACE_NAME" (virt-launcher's libvirt
// names domains so; neither part may hold '_' in Kubernetes); nullopt for any other name.
std::optional<std::pair<std::string, std::string>> split_kubevirt_name(std::string_view name);

// True when a process's comm (its program's base name, cut to 15 bytes) may be a hypervisor's:
// discovery reads the command lines of these alone when the source gives comms for free. QEMU
// started with -name ...,process=NAME renames itself and is found by `--source procfs` only.
bool may_be_vm_comm(std::string_view comm);

// A thread's role as its name and ids tell it.
struct ThreadClass {
  ThreadRole role = ThreadRole::emulator_other;
  int vcpu = -1;
  std::string iothread;
};

// Classifies a thread of VM process `pid` by its exact name (QEMU "CPU 3/KVM", "IO iothread1",
// Firecracker "fc_vcpu 3", cloud-hypervisor "vcpu3", crosvm "crosvm_vcpu3", "vhost-<pid>").
ThreadClass classify_thread(Hypervisor hypervisor, std::string_view name, int tid, int pid);

// The vCPU number in a name like PREFIX + digits + SUFFIX; nullopt unless the name is exactly that.
std::optional<int> parse_indexed_name(std::string_view name, std::string_view prefix,
                                      std::string_view suffix = {});

}  // namespace vcpumap
