// One audit finding: plain data shared by the rules (src/audit) and the views that print them.
// Header-only, so views need no link to the audit library.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"

namespace vcpumap::audit {

enum class Severity { info, warning, error };

// The word used in text and JSON.
constexpr std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::error:
      return "error";
  }
  return "unknown";
}

// A thread a finding is about.
struct FindingThread {
  std::string vm;  // display name of its VM
  int tid = 0;
  ThreadRole role = ThreadRole::emulator_other;
  int vcpu = -1;         // for vCPUs
  std::string iothread;  // for I/O threads
};

struct Finding {
  std::string rule;  // stable id, e.g. "pin-drift"
  Severity severity = Severity::warning;
  std::string vm;                // the VM the fix applies to
  std::vector<std::string> vms;  // every VM involved, `vm` first
  std::vector<int> vm_pids;      // their PIDs, same order: how named VMs select findings
  std::vector<FindingThread> threads;
  CpuSet cpus;          // the host CPUs involved
  std::string message;  // what was found and why it matters, one sentence
  std::string fix;      // a command that fixes it; empty when there is none to give
};

}  // namespace vcpumap::audit
