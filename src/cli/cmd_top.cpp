// `vcpumap top`: the live view. Full-screen on a terminal; `-b` prints text per iteration as
// `top -b` does, `--json` one JSON object per line per iteration.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/core.h>

#include "cli/options.h"
#include "collect/delay.h"
#include "collect/sampler.h"
#include "collect/sampling_loop.h"
#include "sources/procfs/procfs.h"
#include "views/json.h"
#include "views/top_screen.h"
#include "views/top_view.h"

namespace vcpumap::cli {
namespace {

struct TopOptions {
  double delay_s = 2.0;
  int iterations = 0;  // 0: until interrupted (or q)
  bool batch = false;
  bool emulator = false;
  std::string sort = "N";
  std::string filter;
};

Result<views::TopSort> parse_sort(const std::string& key) {
  if (key == "N") return views::TopSort::name;
  if (key == "P") return views::TopSort::cpu_pct;
  if (key == "D") return views::TopSort::delay;
  if (key == "M") return views::TopSort::migrations;
  return make_error(ExitCode::bad_input,
                    "unknown sort '{}': use N (name), P (%CPU), D (delay) or M (migrations)", key);
}

// The WAITED BEHIND column's split, interval by interval. Without BPF top keeps going: the column
// says n/a, and one note says why.
class TopWaitsFeed {
 public:
  explicit TopWaitsFeed(const SnapshotOptions& options) {
    if (options.source == SourceChoice::procfs) {
      why_ = "it needs BPF, and --source procfs was given";
    } else if (!procfs::is_own_root(options.root)) {
      why_ = "it needs BPF, which sees this host only, not --root";
    } else if (auto opened = DelayWatch::open(); !opened) {
      why_ = opened.error().message;
    } else {
      watch_ = std::move(*opened);
    }
  }
  // The split over `sample`'s interval, or nullptr (n/a).
  views::TopWaits update(const Sample& sample) {
    if (!watch_) return nullptr;
    auto report = watch_->update_interval(sample.snapshot);
    if (!report) {
      fmt::print(stderr, "vcpumap: note: WAITED BEHIND is n/a from now on: {}\n",
                 report.error().message);
      watch_.reset();
      return nullptr;
    }
    report_ = std::move(*report);
    return &report_;
  }
  void print_note() const {
    if (!why_.empty()) fmt::print(stderr, "vcpumap: note: WAITED BEHIND is n/a: {}\n", why_);
  }

 private:
  std::unique_ptr<DelayWatch> watch_;
  std::string why_;
  DelayReport report_;
};

// Batch and JSON: a first sample to start from, then one line set per interval.
int run_lines(Sampler& sampler, const TopOptions& options, const views::TopSettings& settings,
              bool json, TopWaitsFeed& feed) {
  LoopOptions loop;
  loop.period = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(options.delay_s));
  if (options.iterations > 0) loop.samples = static_cast<std::uint64_t>(options.iterations);
  bool reader_gone = false;
  auto end = run_sampling_loop(sampler, loop, [&](const Sample& sample) -> Result<bool> {
    const auto waits = feed.update(sample);
    if (json) {
      fmt::print("{}\n", views::dump_json(views::top_json(sample, waits)));
    } else {
      fmt::print("{}", views::render_top_batch(sample, settings, waits));
    }
    std::fflush(stdout);
    reader_gone = std::ferror(stdout) != 0;
    return !reader_gone;
  });
  if (!end) return report_error(end.error());
  return reader_gone ? 1 : 0;
}

int run_top(const GlobalOptions& global, const TopOptions& options) {
  auto sort = parse_sort(options.sort);
  if (!sort) return report_error(sort.error());
  views::TopSettings settings;
  settings.delay_s = options.delay_s;
  settings.sort = *sort;
  settings.show_emulator = options.emulator;
  settings.filter = options.filter;

  SamplerOptions sampler_options;
  sampler_options.snapshot = global.snapshot_options();
  // libvirt's view comes from a watcher kept current by libvirt's events, as the exporter's:
  // a refresh never waits for libvirt, and a libvirt that does not answer costs one timeout.
  std::shared_ptr<libvirt::Watcher> watcher;
  if (libvirt_asked(sampler_options.snapshot)) {
    sampler_options.snapshot.use_libvirt = false;
    watcher = std::make_shared<libvirt::Watcher>(sampler_options.snapshot.libvirt_uri,
                                                 sampler_options.snapshot.libvirt_timeout);
    watcher->wait_first_listing();
    sampler_options.annotate = [watcher](Snapshot& snapshot) {
      attach_watched(snapshot, watcher->view());
    };
  }
  TopWaitsFeed feed(sampler_options.snapshot);
  Sampler sampler(std::move(sampler_options));
  auto first = sampler.sample();
  if (!first) return report_error(first.error());
  print_notes((*first)->snapshot);
  feed.print_note();
  feed.update(**first);  // the split's first interval starts at the first sample
  if (watcher) {
    if (const auto view = watcher->view(); !view.up && !view.absent && !view.problem.empty()) {
      fmt::print(stderr,
                 "vcpumap: note: {}: libvirt ids, states and configured pinning are missing\n",
                 view.problem);
    }
  }

  const bool interactive =
      !options.batch && !global.json && ::isatty(STDOUT_FILENO) && ::isatty(STDIN_FILENO);
  if (!interactive) return run_lines(sampler, options, settings, global.json, feed);
  const auto waits_for = [&feed](const Sample& sample) { return feed.update(sample); };
  if (auto status = views::run_top_screen(sampler, settings, options.iterations, waits_for);
      !status) {
    return report_error(status.error());
  }
  return 0;
}

}  // namespace

void add_top_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto options = std::make_shared<TopOptions>();
  auto* top = app.add_subcommand(
      "top", "live view: where each vCPU runs, %CPU, run-queue delay, migrations (keys: h)");
  top->add_option("-d,--delay", options->delay_s, "seconds between refreshes (default 2)")
      ->type_name("SECS")
      ->check(CLI::Range(0.1, 86400.0));
  top->add_option("-n,--iterations", options->iterations,
                  "stop after N refreshes (default: until q or interrupted)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  top->add_flag("-b,--batch", options->batch,
                "print plain text per iteration, as top -b (also when not on a terminal)");
  top->add_flag("-e,--emulator", options->emulator, "show emulator, I/O and vhost threads too");
  top->add_option("-o,--sort", options->sort,
                  "row order: N name (default), P %CPU, D delay, M migrations")
      ->type_name("KEY");
  top->add_option("-f,--filter", options->filter, "only VMs whose name contains TEXT (or PID)")
      ->type_name("TEXT");
  top->callback([&global, &exit_code, options] { exit_code = run_top(global, *options); });
}

}  // namespace vcpumap::cli
