// One look at the host: topology plus every VM with its threads' facts.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "sources/libvirt/watcher.h"
#include "sources/platform/proxmox.h"
#include "sources/thread_source.h"
#include "util/result.h"

namespace vcpumap {

// Which engine reads the threads' facts (--source).
enum class SourceChoice {
  automatic,  // bpf where the kernel, BTF and privileges allow it, else procfs (one note says why)
  bpf,
  procfs
};
std::string_view to_string(SourceChoice choice);
// "auto", "bpf" or "procfs"; an error names the input and the three words.
Result<SourceChoice> parse_source_choice(std::string_view text);

struct SnapshotOptions {
  std::filesystem::path root = "/";      // where /proc and /sys are read
  std::vector<std::string> qmp_sockets;  // QMP monitors to ask for vCPU thread ids
  bool with_topology = true;
  bool use_libvirt = true;  // ask libvirt too (only when root is this machine's own)
  std::string libvirt_uri;  // empty: LIBVIRT_DEFAULT_URI, else qemu:///system
  SourceChoice source = SourceChoice::automatic;
  std::chrono::milliseconds libvirt_timeout{
      2000};  // a libvirt call unanswered this long is given up
};

// Options that read the tree under `root` alone: its /proc and /sys, no libvirt, no QMP.
inline SnapshotOptions options_for_root(std::filesystem::path root) {
  SnapshotOptions options;
  options.root = std::move(root);
  options.use_libvirt = false;
  return options;
}

// The thread source `options` choose. `keep_files` is for a sampler that reads the same threads
// again (procfs keeps their files open). When `auto` falls back to procfs, `notes` gets one line
// saying why and what would enable BPF.
Result<std::unique_ptr<ThreadSource>> open_thread_source(
    const SnapshotOptions& options, bool keep_files, std::vector<std::string>& notes,
    std::optional<std::size_t> kept_file_budget = std::nullopt);

// Reads topology and every VM on the host.
Result<Snapshot> take_snapshot(const SnapshotOptions& options);
// The same from a source already open (the sampler's first sample); `vhost_pids`, when given,
// gets, by VM pid, the pids of the kernel threads outside each VM that serve it; Proxmox configs
// are read through `proxmox_configs` when given.
Result<Snapshot> take_snapshot(const SnapshotOptions& options, ThreadSource& source,
                               std::map<int, std::vector<int>>* vhost_pids = nullptr,
                               proxmox::ConfigFiles* proxmox_configs = nullptr);

// Adds what libvirt knows (ids, states, configured pinning, nova metadata, inactive domains) to
// the VMs found in /proc, asking it with bounded calls. When libvirt can't be reached or does not
// answer in time, adds one note saying so and marks the processes libvirt runs.
void merge_libvirt(Snapshot& snapshot, const SnapshotOptions& options);
// Joins libvirt's domains (as listed by libvirt, or kept from an earlier listing) to the VMs
// found in /proc; domains without a process are added as VMs of their own.
void join_libvirt(Snapshot& snapshot, std::vector<LibvirtDomain> domains);
// True when `options` ask for libvirt and read this machine's own /proc.
bool libvirt_asked(const SnapshotOptions& options);
// Joins what a libvirt watcher knows (kept current by libvirt's events) to the VMs found in /proc,
// with libvirt's health and, when it is away, a note; makes no libvirt call.
void join_watched(Snapshot& snapshot, const libvirt::WatchedView& view);
// Attaches what a libvirt watcher knows to the running VMs found in /proc, and its health; adds
// and reorders no VM (the sampler's snapshots pair VMs with rates by index).
void attach_watched(Snapshot& snapshot, const libvirt::WatchedView& view);
// merge_libvirt when `options` ask for libvirt and read this machine's own /proc.
void merge_libvirt_if_asked(Snapshot& snapshot, const SnapshotOptions& options);

// Finds the VM a user named: by name, UUID, NAMESPACE/NAME (KubeVirt), then a number as a libvirt
// id, a Proxmox VMID or a PID, in that order. Error (exit 2) names the input when unknown.
Result<const Vm*> find_vm(const Snapshot& snapshot, std::string_view spec);

}  // namespace vcpumap
