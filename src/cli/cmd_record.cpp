// `vcpumap record [-o FILE] [-d DURATION] [-i INTERVAL] [--exact] [VM...]`: placement history to
// a file. Ctrl-C (SIGINT) or SIGTERM ends it cleanly; they are taken through a signalfd so the
// recorder sees them in its wait and no global flag is needed.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <memory>

#include <fmt/core.h>

#include "cli/cmd_report.h"
#include "cli/options.h"
#include "record/recorder.h"
#include "util/duration.h"
#include "util/fd.h"
#include "util/version.h"
#include "views/json.h"

namespace vcpumap::cli {
namespace {

struct RecordCliOptions {
  std::string output = "vcpumap.rec";
  std::string duration;
  std::string interval = "100ms";
  bool exact = false;
  std::vector<std::string> vms;
};

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 10 * 1024) return fmt::format("{} B", bytes);
  if (bytes < 10 * 1024 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  return fmt::format("{:.1f} MiB", bytes / 1048576.0);
}

// Blocks SIGINT and SIGTERM while recording and gives them as a readable fd; restores the mask.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&mask_);
    sigaddset(&mask_, SIGINT);
    sigaddset(&mask_, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &mask_, &old_);
    fd_ = Fd(::signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  ~StopSignals() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  int fd() const { return fd_.get(); }

 private:
  sigset_t mask_{}, old_{};
  Fd fd_;
};

int run_record(const GlobalOptions& global, const RecordCliOptions& cli) {
  record::RecordOptions options;
  options.snapshot = global.snapshot_options();
  options.output = cli.output;
  options.mode = cli.exact ? record::Mode::exact : record::Mode::sampled;
  options.vms = cli.vms;
  options.tool_version = fmt::format("vcpumap {}", kVersion);
  auto interval = parse_duration(cli.interval);
  if (!interval) return report_error(interval.error());
  if (*interval < std::chrono::milliseconds(1)) {
    return report_error(make_error(ExitCode::bad_input,
                                   "interval '{}' is too short: use 1ms or more", cli.interval));
  }
  options.interval = *interval;
  if (!cli.duration.empty()) {
    auto duration = parse_duration(cli.duration);
    if (!duration) return report_error(duration.error());
    options.duration = *duration;
  }
  const bool tty = ::isatty(STDERR_FILENO);
  auto last_line = std::make_shared<double>(-10.0);
  auto progress = [&, last_line](const record::RecordProgress& now) {
    const std::string line = fmt::format(
        "recording {:.1f}s: {} vCPUs, {} samples, {} events ({} lost), {} to {}", now.elapsed_s,
        now.vcpus, now.samples, now.events, now.lost_events, human_bytes(now.bytes), cli.output);
    if (!now.reason.empty()) {
      if (tty) fmt::print(stderr, "\r\033[K");
      fmt::print(stderr, "vcpumap: {} ({})\n", line, now.reason);
    } else if (tty) {
      fmt::print(stderr, "\r\033[K{}", line);
    } else if (now.elapsed_s - *last_line >= 5) {  // a log, not a terminal: a line each 5 s
      fmt::print(stderr, "{}\n", line);
      *last_line = now.elapsed_s;
    }
  };
  StopSignals signals;
  auto result = record::run_recording(options, signals.fd(), progress);
  if (!result) return report_error(result.error());
  if (!result->event_source_note.empty()) {
    fmt::print(stderr, "vcpumap: note: {}\n", result->event_source_note);
  }
  if (global.json) {
    fmt::print("{}\n",
               views::dump_json({{"file", cli.output},
                                 {"mode", std::string(to_string(options.mode))},
                                 {"duration_s", result->elapsed_s},
                                 {"samples", result->samples},
                                 {"events", result->events},
                                 {"lost_events", result->lost_events},
                                 {"bytes", result->bytes},
                                 {"vcpus", result->vcpus},
                                 {"reason", result->reason},
                                 {"event_source", result->event_source.empty()
                                                      ? nlohmann::json(nullptr)
                                                      : nlohmann::json(result->event_source)}}));
  }
  return 0;
}

}  // namespace

void add_record_commands(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto options = std::make_shared<RecordCliOptions>();
  auto* record = app.add_subcommand(
      "record", "record where each vCPU runs over time into a file (see `report`)");
  record->add_option("-o,--output", options->output, "the recording file (default vcpumap.rec)")
      ->type_name("FILE");
  record
      ->add_option("-d,--duration", options->duration,
                   "stop after DURATION (50ms, 2s, 5m, 1h; a bare number is seconds); "
                   "default: until Ctrl-C")
      ->type_name("DURATION");
  record
      ->add_option("-i,--interval", options->interval,
                   "sampling interval of sampled mode (default 100ms)")
      ->type_name("INTERVAL");
  record->add_flag("--exact", options->exact,
                   "record every switch and migration from the kernel's sched tracepoints "
                   "(root; tracefs mounted)");
  record
      ->add_option("vms", options->vms,
                   "VMs to record (name, UUID, libvirt id, Proxmox VMID or PID); "
                   "default: every VM, also those started meanwhile")
      ->type_name("VM");
  record->callback([&global, &exit_code, options] { exit_code = run_record(global, *options); });
  add_report_command(app, global, exit_code);
}

}  // namespace vcpumap::cli
