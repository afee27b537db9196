// Finding VMs and naming their threads, from any thread source: what a snapshot and the sampler
// share, so the role of a thread and the order of a VM's threads are decided in one place.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "collect/snapshot.h"
#include "core/model.h"
#include "sources/platform/proxmox.h"
#include "sources/thread_source.h"

namespace vcpumap {

// A VM process found, and the kernel threads of other processes that serve it (vhost-<pid>
// workers run outside the VM before Linux 6.4): their threads are read with the VM's.
struct FoundVm {
  Vm vm;
  std::vector<int> vhost_pids;
};

// Every VM process on the host whose pid is not in `known`, with its threads read and named
// (thread names, else libvirt's status file, else the QMP monitors of `options`). One-line
// remarks (a QMP monitor that did not answer, vCPUs that can't be told apart) go to `notes`.
// Proxmox configs are read through `configs` when given (a sampler's, kept to see edits).
Result<std::vector<FoundVm>> find_vms(ThreadSource& source, const SnapshotOptions& options,
                                      const std::set<int>& known, std::vector<std::string>& notes,
                                      proxmox::ConfigFiles* configs = nullptr);

// Gives a Proxmox VM the config its VMID.conf has now (and the note when it can't be used), so a
// long-running view sees an edit; a file that did not change is not read again.
void refresh_platform(Vm& vm, proxmox::ConfigFiles& configs);

// One reading as a thread of `vm`, its role told by its name. A VM whose vCPUs were named by
// libvirt or QMP (by tid) gets no new vCPUs from names: its new threads are emulator threads.
VmThread make_vm_thread(ThreadReading&& reading, const Vm& vm);

// The order every view shows a VM's threads in: vCPUs by index, I/O threads by id, the main
// loop, other emulator threads, vhost.
bool thread_order_less(const VmThread& a, const VmThread& b);
// Sorts a VM's threads in that order.
void sort_threads(std::vector<VmThread>& threads);

}  // namespace vcpumap
