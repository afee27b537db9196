// vcpumap: where every virtual CPU runs. Parses the command line and hands over to a subcommand.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <exception>

#include "cli/options.h"
#include "util/version.h"

int main(int argc, char** argv) {
  using namespace vcpumap::cli;
  GlobalOptions global;
  int exit_code = 0;

  CLI::App app{"vcpumap: where every virtual CPU runs", "vcpumap"};
  app.set_version_flag("--version", fmt::format("vcpumap {}", vcpumap::kVersion));
  app.fallthrough();
  app.require_subcommand(0, 1);
  app.add_option("--root", global.root,
                 "file-system root under which proc/ and sys/ are read (default /)")
      ->type_name("DIR");
  app.add_flag("--json", global.json, "print JSON instead of text");
  app.add_option("--qmp", global.qmp_sockets,
                 "a QEMU QMP monitor socket to ask for vCPU thread ids (repeatable)")
      ->type_name("SOCKET");
  app.add_option("-c,--connect", global.connect_uri,
                 "libvirt URI (default: LIBVIRT_DEFAULT_URI, else qemu:///system)")
      ->type_name("URI");
  app.add_flag("--no-libvirt", global.no_libvirt, "do not ask libvirt; read VMs from /proc alone");
  app.add_option_function<std::string>(
         "--source",
         [&global](const std::string& text) {
           global.source = *vcpumap::parse_source_choice(text);
         },
         "where threads' facts are read: auto (bpf where it works, else procfs), bpf, procfs")
      ->type_name("SOURCE")
      ->check(CLI::IsMember({"auto", "bpf", "procfs"}))
      // Given twice (a wrapper's and the user's), the last one counts, as for most tools.
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--libvirt-timeout", global.libvirt_timeout_s,
                 "seconds a libvirt call may go unanswered before vcpumap goes on from /proc "
                 "alone (default 2)")
      ->type_name("SECS")
      ->check(CLI::Range(0.1, 3600.0));

  add_list_command(app, global, exit_code);
  add_vcpuinfo_command(app, global, exit_code);
  add_pin_commands(app, global, exit_code);
  add_threads_command(app, global, exit_code);
  add_topology_command(app, global, exit_code);
  add_top_command(app, global, exit_code);
  add_record_commands(app, global, exit_code);
  add_audit_command(app, global, exit_code);
  add_serve_command(app, global, exit_code);
  add_doctor_command(app, global, exit_code);
  add_delay_command(app, global, exit_code);
  add_complete_command(app, global, exit_code);

  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty()) exit_code = run_list(global);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; a bad command line is bad input (2), as for every command.
    return app.exit(error) == 0 ? 0 : static_cast<int>(vcpumap::ExitCode::bad_input);
  } catch (const std::exception& error) {
    fmt::print(stderr, "vcpumap: {}\n", error.what());
    return 1;
  }
  return exit_code;
}
