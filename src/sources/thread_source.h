// The thread-facts source: the one interface every engine that reads threads implements (procfs,
// bpf), so that nothing above sources/ knows which engine runs. falcosecurity/libs' scap_vtable is
// the model: one small interface per kind of data, one engine per data source.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap {

// A process as discovery first sees it, before its command line is read.
struct ProcessEntry {
  int pid = 0;
  // The main thread's comm when the engine has it for free (bpf), else empty: then every
  // process's command line must be read to tell VMs apart.
  std::string comm;
  bool comm_known = false;
  bool kernel_thread = false;  // no memory of its own (PF_KTHREAD): never a VM, maybe vhost
};

// One thread as read once.
struct ThreadReading {
  int pid = 0;  // the process whose task folder holds it
  int tid = 0;
  std::string name;  // comm: raw bytes, may hold anything
  ThreadFacts facts;
};

class ThreadSource {
 public:
  virtual ~ThreadSource() = default;

  // The engine's name as JSON's top-level "source" gives it: "procfs" or "bpf".
  virtual std::string_view name() const = 0;
  // Every process of the host, unsorted.
  virtual std::vector<ProcessEntry> list_processes() = 0;
  // A process's argument vector; empty for kernel threads and processes that exited.
  virtual std::vector<std::string> read_argv(int pid) = 0;
  // The comm of a process (stat field 2); empty when it exited.
  virtual std::string read_comm(int pid) = 0;
  // Every thread of each process in `pids`, appended to `out` grouped by process in the order of
  // `pids`. A process that exited gives no thread; a thread that exits mid-read is skipped. Both
  // are normal on a live host. An engine that keeps per-process state (open files) drops it for
  // processes that exited, not for those a call leaves out (discovery asks for new VMs only).
  virtual Status read_threads(std::span<const int> pids, std::vector<ThreadReading>& out) = 0;
  // Fills utime/stime ticks (stat fields 14-15) where they are missing: the kernel scales them
  // to the runtime when stat is read, so an engine that does not read stat must read it here
  // for the threads whose ticks a view shows (virsh's "CPU time").
  virtual void read_tick_times(std::span<VmThread> threads, int pid) = 0;
  // One-line remarks for the user gathered since the last call (e.g. a descriptor budget).
  virtual std::vector<std::string> take_notes() { return {}; }
};

}  // namespace vcpumap
