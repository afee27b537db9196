// Shared plumbing for subcommands that act on one VM.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/options.h"

namespace vcpumap::cli {

using VmPrinter = std::function<void(const Vm&, const Snapshot&)>;

// Takes a snapshot, finds the VM the user named and prints it with `print`.
// With `tick_times`, the VM's threads also get stat's utime/stime ticks whatever the source.
int with_vm(const GlobalOptions& global, const std::string& spec, const VmPrinter& print,
            bool tick_times = false);

// Adds a subcommand taking one VM argument that prints with `print`.
CLI::App* add_vm_command(CLI::App& app, const GlobalOptions& global, int& exit_code,
                         const std::string& name, const std::string& description,
                         const VmPrinter& print, bool tick_times = false);

// [{"vcpu"|"id": ..., "tid": ..., "affinity": [...]}] for a list of threads.
nlohmann::json affinity_rows(const std::vector<const VmThread*>& threads, const char* key,
                             bool iothread);

}  // namespace vcpumap::cli
