// Options every subcommand takes, and how subcommands are registered with main.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "collect/snapshot.h"

namespace vcpumap::cli {

struct GlobalOptions {
  std::string root = "/";
  bool json = false;
  std::vector<std::string> qmp_sockets;
  std::string connect_uri;                        // libvirt URI (--connect)
  bool no_libvirt = false;                        // --no-libvirt: /proc alone
  SourceChoice source = SourceChoice::automatic;  // --source
  double libvirt_timeout_s = 2.0;  // --libvirt-timeout: how long a libvirt call may go unanswered

  std::chrono::milliseconds libvirt_timeout() const {
    return std::chrono::milliseconds(static_cast<long long>(libvirt_timeout_s * 1000.0));
  }
  SnapshotOptions snapshot_options() const {
    SnapshotOptions options{root, qmp_sockets, true, !no_libvirt, connect_uri};
    options.source = source;
    options.libvirt_timeout = libvirt_timeout();
    return options;
  }
};

// Each subcommand adds itself to `app`; when it runs it stores its exit status in `exit_code`.
void add_list_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_vcpuinfo_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_pin_commands(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_threads_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_topology_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_top_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_record_commands(CLI::App& app, const GlobalOptions& global,
                         int& exit_code);  // record, report
void add_audit_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_serve_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_doctor_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
void add_delay_command(CLI::App& app, const GlobalOptions& global, int& exit_code);
// The hidden `__complete-vms` the shell completions ask for VM names and PIDs.
void add_complete_command(CLI::App& app, const GlobalOptions& global, int& exit_code);

// Runs `vcpumap list`, also what `vcpumap` alone does.
int run_list(const GlobalOptions& global);

// Prints "vcpumap: <message>" on stderr and gives the error's exit status.
int report_error(const Error& error);
// Prints the snapshot's notes on stderr, one line each.
void print_notes(const Snapshot& snapshot);
// Prints one VM's notes on stderr.
void print_notes(const Vm& vm);

}  // namespace vcpumap::cli
