#include "collect/discovery.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "core/identify.h"
#include "sources/libvirt/status_file.h"
#include "sources/platform/kubernetes.h"
#include "sources/platform/kubevirt.h"
#include "sources/platform/proxmox.h"
#include "sources/qmp/qmp.h"
#include "util/text.h"

namespace vcpumap {
namespace {

// Gives vCPU (and I/O thread) roles by thread id, for QEMU started without debug-threads.
bool assign_by_tid(Vm& vm, const std::map<int, int>& vcpu_tids,
                   const std::map<int, int>& iothread_tids) {
  std::map<int, VmThread*> by_tid;
  for (auto& thread : vm.threads) by_tid[thread.tid] = &thread;
  // Only a mapping whose every thread is one of this VM's can be this VM's (stale files, other
  // VMs' monitors).
  for (const auto& [vcpu, tid] : vcpu_tids) {
    if (!by_tid.contains(tid)) return false;
  }
  if (vcpu_tids.empty()) return false;
  for (const auto& [vcpu, tid] : vcpu_tids) {
    by_tid[tid]->role = ThreadRole::vcpu;
    by_tid[tid]->vcpu = vcpu;
  }
  for (const auto& [id, tid] : iothread_tids) {
    if (auto it = by_tid.find(tid); it != by_tid.end()) {
      it->second->role = ThreadRole::iothread;
      it->second->iothread = fmt::format("iothread{}", id);
    }
  }
  return true;
}

// The note of a Proxmox VM whose config can't be used starts so; a reload replaces it.
std::string proxmox_note_prefix(const Vm& vm) {
  return fmt::format("{} (Proxmox VMID {}): ", printable(vm.display_name()), vm.proxmox->vmid);
}

std::string proxmox_note(const Vm& vm, const Error& error) {
  return fmt::format("{}{}; its configured CPUs are unknown", proxmox_note_prefix(vm),
                     error.message);
}

void set_proxmox_config(Vm& vm, const Result<ProxmoxConfig>& config) {
  const auto prefix = proxmox_note_prefix(vm);
  std::erase_if(vm.notes, [&](const std::string& note) { return note.starts_with(prefix); });
  if (config) {
    vm.proxmox->config = *config;
  } else {
    vm.proxmox->config.reset();
    vm.notes.push_back(proxmox_note(vm, config.error()));
  }
}

// The configured pinning of a KubeVirt VM from its pod's status file: only what the definition
// pins, so an unpinned VM (no dedicatedCpuPlacement) has nothing to drift from.
void add_launcher_pins(KubevirtVm& kubevirt, const libvirt::DomainDefinition& definition) {
  constexpr int kMaxVcpus = 4096;  // KVM_MAX_VCPUS on x86: more is a file not to believe
  for (int vcpu = 0; vcpu < std::min(definition.max_vcpus, kMaxVcpus); ++vcpu) {
    if (const auto it = definition.vcpupins.find(vcpu); it != definition.vcpupins.end()) {
      kubevirt.vcpu_pins[vcpu] = it->second;
    } else if (definition.cpuset) {
      kubevirt.vcpu_pins[vcpu] = *definition.cpuset;
    }
  }
  kubevirt.emulator_pin = definition.emulatorpin ? definition.emulatorpin : definition.cpuset;
}

// What the platform that runs a VM says about it: Proxmox VE's config for its VMID, KubeVirt's
// namespace and name from a QEMU in a pod. Remarks on a config that can't be used go to its notes.
// Gives the threads of a KubeVirt VM's status file (ids in its pod), when one was read.
std::optional<libvirt::StatusThreads> add_platform(Vm& vm, const VmIdentity& identity,
                                                   const SnapshotOptions& options,
                                                   proxmox::ConfigFiles* configs) {
  if (identity.proxmox_vmid > 0) {
    vm.proxmox = ProxmoxVm{identity.proxmox_vmid, std::nullopt};
    if (configs != nullptr) {
      set_proxmox_config(vm, configs->get(vm.proxmox->vmid));
    } else {
      set_proxmox_config(vm, proxmox::read_qemu_server_config(options.root, vm.proxmox->vmid));
    }
  }
  if (vm.hypervisor != Hypervisor::qemu) return std::nullopt;
  // virt-launcher names the domain NAMESPACE_NAME; only a QEMU in a pod is KubeVirt's.
  auto parts = split_kubevirt_name(vm.name);
  if (!parts) return std::nullopt;
  auto pod = kubernetes::read_pod_cgroup(options.root, vm.pid);
  if (!pod) return std::nullopt;
  KubevirtVm kubevirt;
  kubevirt.ns = std::move(parts->first);
  kubevirt.name = std::move(parts->second);
  kubevirt.pod_uid = std::move(pod->pod_uid);
  // No status file (another launcher layout) is no remark: the pod still names the VM, and the
  // thread names may give its vCPUs. One that is not a status file is.
  auto status = kubevirt::read_launcher_status(options.root, vm.pid, vm.name);
  std::optional<libvirt::StatusThreads> threads;
  if (!status) {
    vm.notes.push_back(fmt::format("{} (pid {}): its pod's {}; ignored", printable(vm.name), vm.pid,
                                   printable(status.error().message)));
  } else if (*status) {
    kubevirt.status_file = (*status)->path;
    add_launcher_pins(kubevirt, (*status)->definition);
    threads = std::move((*status)->threads);
  }
  vm.kubevirt = std::move(kubevirt);
  return threads;
}

// Gives vCPU roles from a KubeVirt VM's status file, whose thread ids are its pod's: each is
// matched to a host thread by the last id of its NSpid line. Without a match for all of them the
// file is not trusted (an older QEMU's, another VM's), and the VM's notes say so.
bool assign_from_pod(Vm& vm, const SnapshotOptions& options, const libvirt::StatusThreads& pod) {
  std::vector<int> tids;
  for (const auto& thread : vm.threads) tids.push_back(thread.tid);
  const auto host_tid = kubevirt::host_tids_by_namespace_id(options.root, vm.pid, tids);
  const auto main = host_tid.find(pod.pid);
  const auto vcpus = kubevirt::to_host_tids(pod.vcpu_tids, host_tid);
  auto iothreads = kubevirt::to_host_tids(pod.iothread_tids, host_tid);
  if (main != host_tid.end() && main->second == vm.pid && vcpus &&
      assign_by_tid(vm, *vcpus, iothreads.value_or(std::map<int, int>{}))) {
    return true;
  }
  vm.notes.push_back(fmt::format(
      "{} (pid {}): the thread ids in its pod's {} are not all its threads' (NSpid); ignored",
      printable(vm.display_name()), vm.pid, printable(vm.kubevirt->status_file)));
  return false;
}

// Names the vCPUs of a VM whose threads carry no vCPU names: its pod's libvirt status file, else
// the host's, else QMP.
void assign_vcpus(Vm& vm, const SnapshotOptions& options,
                  const std::vector<std::map<int, int>>& qmp_answers,
                  const libvirt::StatusThreads* pod_status) {
  if (!vm.vcpus().empty()) {
    vm.vcpu_source = VcpuSource::thread_names;
  } else if (pod_status != nullptr && assign_from_pod(vm, options, *pod_status)) {
    vm.vcpu_source = VcpuSource::libvirt_status;
  } else if (vm.hypervisor == Hypervisor::qemu) {
    if (auto status = libvirt::read_status_file(options.root, vm.name);
        status && status->pid == vm.pid &&
        assign_by_tid(vm, status->vcpu_tids, status->iothread_tids)) {
      vm.vcpu_source = VcpuSource::libvirt_status;
    } else {
      for (const auto& answer : qmp_answers) {
        if (assign_by_tid(vm, answer, {})) {
          vm.vcpu_source = VcpuSource::qmp;
          break;
        }
      }
    }
  }
  if (vm.vcpu_source == VcpuSource::unknown) {
    vm.notes.push_back(fmt::format(
        "{} (pid {}): its vCPU threads can't be told apart; start QEMU with "
        "-name {},debug-threads=on, or name its monitor with --qmp SOCKET",
        printable(vm.display_name()), vm.pid, vm.name.empty() ? "NAME" : printable(vm.name)));
  }
}

}  // namespace

void refresh_platform(Vm& vm, proxmox::ConfigFiles& configs) {
  if (!vm.proxmox) return;
  const auto& config = configs.get(vm.proxmox->vmid);
  // Unchanged (the usual case): nothing is copied.
  const bool same =
      config ? vm.proxmox->config == *config
             : !vm.proxmox->config && std::find(vm.notes.begin(), vm.notes.end(),
                                                proxmox_note(vm, config.error())) != vm.notes.end();
  if (same) return;
  set_proxmox_config(vm, config);
}

VmThread make_vm_thread(ThreadReading&& reading, const Vm& vm) {
  VmThread thread;
  thread.tid = reading.tid;
  const auto role = classify_thread(vm.hypervisor, reading.name, reading.tid, vm.pid);
  if (vm.vcpu_source == VcpuSource::thread_names || vm.vcpu_source == VcpuSource::unknown ||
      role.role != ThreadRole::vcpu) {
    thread.role = role.role;
    thread.vcpu = role.vcpu;
    thread.iothread = role.iothread;
  }
  thread.name = std::move(reading.name);
  thread.facts = std::move(reading.facts);
  return thread;
}

bool thread_order_less(const VmThread& a, const VmThread& b) {
  const auto order = [](const VmThread& thread) {
    return std::tuple<int, int, const std::string&, int>(static_cast<int>(thread.role), thread.vcpu,
                                                         thread.iothread, thread.tid);
  };
  return order(a) < order(b);
}

void sort_threads(std::vector<VmThread>& threads) {
  std::sort(threads.begin(), threads.end(), thread_order_less);
}

Result<std::vector<FoundVm>> find_vms(ThreadSource& source, const SnapshotOptions& options,
                                      const std::set<int>& known, std::vector<std::string>& notes,
                                      proxmox::ConfigFiles* configs) {
  std::vector<std::map<int, int>> qmp_answers;
  for (const auto& socket : options.qmp_sockets) {
    auto answer = qmp::query_vcpu_threads(socket);
    if (!answer) return answer.error();
    qmp_answers.push_back(std::move(*answer));
  }

  auto processes = source.list_processes();
  std::sort(processes.begin(), processes.end(),
            [](const ProcessEntry& a, const ProcessEntry& b) { return a.pid < b.pid; });
  std::vector<FoundVm> found;
  std::unordered_map<int, libvirt::StatusThreads> pod_status;  // KubeVirt VMs' status files, by pid
  // Kernel threads named vhost-<pid> serve a VM's devices (Linux < 6.4 runs them outside it).
  std::map<int, std::vector<int>> vhost_kthreads;
  for (const auto& process : processes) {
    if (known.contains(process.pid)) continue;
    // Where the source gives comms for free, only a hypervisor's has its command line read.
    if (process.comm_known && !process.kernel_thread && !may_be_vm_comm(process.comm)) continue;
    const auto argv =
        process.kernel_thread ? std::vector<std::string>{} : source.read_argv(process.pid);
    if (argv.empty()) {
      const auto comm = process.comm_known ? process.comm : source.read_comm(process.pid);
      if (const auto owner = parse_indexed_name(comm, "vhost-")) {
        vhost_kthreads[*owner].push_back(process.pid);
      }
      continue;
    }
    const auto identity = identify_vm(argv);
    if (!identity) continue;
    FoundVm vm;
    vm.vm.pid = process.pid;
    vm.vm.name = identity->name;
    vm.vm.uuid = identity->uuid;
    vm.vm.hypervisor = identity->hypervisor;
    if (auto threads = add_platform(vm.vm, *identity, options, configs)) {
      pod_status.emplace(process.pid, std::move(*threads));
    }
    found.push_back(std::move(vm));
  }

  // One read for every VM's threads: the bpf engine walks them all in one call.
  std::vector<int> pids;
  for (auto& vm : found) {
    pids.push_back(vm.vm.pid);
    if (const auto it = vhost_kthreads.find(vm.vm.pid); it != vhost_kthreads.end()) {
      vm.vhost_pids = it->second;
      pids.insert(pids.end(), it->second.begin(), it->second.end());
    }
  }
  std::vector<ThreadReading> readings;
  if (auto status = source.read_threads(pids, readings); !status) return status.error();
  std::unordered_map<int, std::size_t> owner;  // pid (VM or vhost worker) -> index in found
  for (std::size_t i = 0; i < found.size(); ++i) {
    owner[found[i].vm.pid] = i;
    for (const int vhost : found[i].vhost_pids) owner[vhost] = i;
  }
  // Sized first: grown one push at a time, each VM's vector held up to twice its threads.
  std::vector<std::size_t> counts(found.size(), 0);
  for (const auto& reading : readings) ++counts[owner.at(reading.pid)];
  for (std::size_t i = 0; i < found.size(); ++i) found[i].vm.threads.reserve(counts[i]);
  for (auto& reading : readings) {
    auto& vm = found[owner.at(reading.pid)].vm;
    vm.threads.push_back(make_vm_thread(std::move(reading), vm));
  }
  // A VM with no thread read exited while we looked.
  std::erase_if(found, [](const FoundVm& vm) { return vm.vm.threads.empty(); });
  for (auto& [vm, vhost] : found) {
    const auto pod = pod_status.find(vm.pid);
    assign_vcpus(vm, options, qmp_answers, pod == pod_status.end() ? nullptr : &pod->second);
    sort_threads(vm.threads);
  }
  for (auto& note : source.take_notes()) notes.push_back(std::move(note));
  return found;
}

}  // namespace vcpumap
