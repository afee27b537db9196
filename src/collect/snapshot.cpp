#include "collect/snapshot.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <tuple>

#include <unistd.h>

#include <fmt/format.h>

#include "core/identify.h"
#include "sources/libvirt/status_file.h"
#include "sources/procfs/procfs.h"
#include "sources/qmp/qmp.h"
#include "sources/sysfs/topology.h"
#include "util/text.h"

namespace vcpumap {
namespace {

// Sort key: vCPUs by index, I/O threads by id, the main loop, other emulator threads, vhost.
std::tuple<int, int, std::string, int> thread_order(const VmThread& thread) {
  const int rank = static_cast<int>(thread.role);
  return {rank, thread.vcpu, thread.iothread, thread.tid};
}

VmThread to_vm_thread(procfs::ThreadReading&& reading, Hypervisor hypervisor, int pid) {
  VmThread thread;
  thread.tid = reading.tid;
  const auto role = classify_thread(hypervisor, reading.name, reading.tid, pid);
  thread.role = role.role;
  thread.vcpu = role.vcpu;
  thread.iothread = role.iothread;
  thread.name = std::move(reading.name);
  thread.facts = std::move(reading.facts);
  return thread;
}

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

struct QmpAnswer {
  std::string socket;
  std::map<int, int> vcpu_tids;
};

}  // namespace

Result<Snapshot> take_snapshot(const SnapshotOptions& options) {
  Snapshot snapshot;
  snapshot.monotonic = std::chrono::steady_clock::now();
  snapshot.wall = std::chrono::system_clock::now();
  snapshot.clock_ticks_per_second = ::sysconf(_SC_CLK_TCK);

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

  std::vector<QmpAnswer> qmp_answers;
  for (const auto& socket : options.qmp_sockets) {
    auto answer = qmp::query_vcpu_threads(socket);
    if (!answer) return answer.error();
    qmp_answers.push_back({socket, std::move(*answer)});
  }

  const procfs::Procfs procfs(options.root);
  auto pids = procfs.list_pids();
  std::sort(pids.begin(), pids.end());
  // Kernel threads named vhost-<pid> serve a VM's devices (Linux < 6.4 runs them outside it).
  std::map<int, std::vector<int>> vhost_kthreads;
  for (const int pid : pids) {
    const auto argv = procfs.read_argv(pid);
    if (argv.empty()) {
      if (const auto comm = procfs.read_comm(pid)) {
        if (const auto owner = parse_indexed_name(*comm, "vhost-")) {
          vhost_kthreads[*owner].push_back(pid);
        }
      }
      continue;
    }
    const auto identity = identify_vm(argv);
    if (!identity) continue;
    auto readings = procfs.read_threads(pid);
    if (readings.empty()) continue;  // it exited while we looked

    Vm vm;
    vm.pid = pid;
    vm.name = identity->name;
    vm.uuid = identity->uuid;
    vm.hypervisor = identity->hypervisor;
    for (auto& reading : readings) {
      vm.threads.push_back(to_vm_thread(std::move(reading), vm.hypervisor, pid));
    }
    if (!vm.vcpus().empty()) {
      vm.vcpu_source = VcpuSource::thread_names;
    } else if (vm.hypervisor == Hypervisor::qemu) {
      if (auto status = libvirt::read_status_file(options.root, vm.name);
          status && status->pid == pid &&
          assign_by_tid(vm, status->vcpu_tids, status->iothread_tids)) {
        vm.vcpu_source = VcpuSource::libvirt_status;
      } else {
        for (const auto& answer : qmp_answers) {
          if (assign_by_tid(vm, answer.vcpu_tids, {})) {
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
          printable(vm.display_name()), pid, vm.name.empty() ? "NAME" : printable(vm.name)));
    }
    snapshot.vms.push_back(std::move(vm));
  }

  for (auto& vm : snapshot.vms) {
    if (const auto it = vhost_kthreads.find(vm.pid); it != vhost_kthreads.end()) {
      for (const int kthread : it->second) {
        for (auto& reading : procfs.read_threads(kthread)) {
          vm.threads.push_back(to_vm_thread(std::move(reading), vm.hypervisor, vm.pid));
        }
      }
    }
    std::sort(vm.threads.begin(), vm.threads.end(), [](const VmThread& a, const VmThread& b) {
      return thread_order(a) < thread_order(b);
    });
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
    // A number is a libvirt domain id first (as `virsh vcpuinfo 2`), then a PID.
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
    if (const auto pid = parse_u64(spec)) {
      for (const auto& vm : snapshot.vms) {
        if (vm.pid > 0 && static_cast<std::uint64_t>(vm.pid) == *pid) matches.push_back(&vm);
      }
    }
  }
  if (matches.size() == 1) return matches.front();
  if (matches.size() > 1) {
    return make_error(ExitCode::bad_input,
                      "'{}' names {} VMs; name one by UUID, libvirt id or PID (see 'vcpumap list')",
                      printable(spec), matches.size());
  }
  return make_error(ExitCode::bad_input,
                    "no VM '{}' on this host; name a VM by name, UUID, libvirt id or PID as "
                    "'vcpumap list' shows them",
                    printable(spec));
}

}  // namespace vcpumap
