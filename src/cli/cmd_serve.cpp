// `vcpumap serve`: the Prometheus exporter and JSON API (see docs/metrics.md).
#include <chrono>

#include "cli/options.h"
#include "collect/delay.h"
#include "collect/sampler.h"
#include "collect/snapshot.h"
#include "serve/server.h"
#include "views/prometheus_view.h"

#include <fmt/core.h>

namespace vcpumap::cli {
namespace {

struct ServeFlags {
  serve::ServeOptions options;
  double cache_seconds = 1.0;
  int request_timeout_seconds = 10;
};

int run_serve(const GlobalOptions& global, ServeFlags& flags) {
  if (flags.cache_seconds < 0 || flags.cache_seconds > 3600) {
    return report_error(make_error(ExitCode::bad_input,
                                   "--cache {}: must be 0-3600 seconds (default 1)",
                                   flags.cache_seconds));
  }
  flags.options.cache_max_age =
      std::chrono::milliseconds(static_cast<long long>(flags.cache_seconds * 1000.0));
  flags.options.request_timeout = std::chrono::seconds(flags.request_timeout_seconds);
  // Every refresh shows what `vcpumap list` would, with the same --root, --qmp and libvirt
  // flags, read by the sampler `top` and `record` use: each thread's files stay open between
  // scrapes (a pread each instead of open, read, close) and VMs that come and go are followed.
  // libvirt's view (ids, states, pinning) changes without a thread changing, so it is asked
  // afresh for every refresh. The cache refreshes from one thread at a time.
  const SnapshotOptions snapshot_options = global.snapshot_options();
  SamplerOptions sampler_options;
  sampler_options.snapshot = snapshot_options;
  sampler_options.snapshot.use_libvirt = false;
  auto sampler = std::make_shared<Sampler>(std::move(sampler_options));
  auto take = [sampler, snapshot_options]() -> Result<Snapshot> {
    auto sample = sampler->sample();
    if (!sample) return sample.error();
    Snapshot snapshot = (*sample)->snapshot;
    merge_libvirt_if_asked(snapshot, snapshot_options);
    return snapshot;
  };
  // Who each vCPU waited behind, split in the kernel since the exporter started: without BPF the
  // exporter serves everything else, and says once why this metric is missing.
  std::shared_ptr<DelayWatch> watch;
  if (snapshot_options.source == SourceChoice::procfs) {
    fmt::print(stderr,
               "vcpumap: note: vcpumap_vcpu_waited_behind_seconds_total is not served: it needs "
               "BPF, and --source procfs was given\n");
  } else if (auto opened = DelayWatch::open(); !opened) {
    fmt::print(stderr,
               "vcpumap: note: vcpumap_vcpu_waited_behind_seconds_total is not served: {}\n",
               opened.error().message);
  } else {
    watch = std::move(*opened);
  }
  if (watch) {
    flags.options.extra_metrics = [watch](const Snapshot& snapshot) -> std::string {
      auto report = watch->update(snapshot);
      return report ? views::render_waited_behind(*report) : std::string();
    };
  }
  auto status = serve::run_server(flags.options, std::move(take));
  if (!status) return report_error(status.error());
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  auto* serve = app.add_subcommand(
      "serve", "Prometheus /metrics, the JSON snapshot (/api/v1/snapshot) and /healthz");
  serve
      ->add_option("--listen,--web.listen-address", flags->options.listen,
                   "address to listen on; default 127.0.0.1:18278 (loopback only); :PORT for "
                   "every interface; port 0 picks a free one")
      ->type_name("ADDR:PORT");
  serve
      ->add_option("--web.config.file", flags->options.web_config_file,
                   "TLS and basic auth, as Prometheus exporter-toolkit's web config YAML")
      ->type_name("FILE");
  serve
      ->add_option("--cache", flags->cache_seconds,
                   "serve one snapshot to every request within this many seconds (default 1)")
      ->type_name("SECONDS");
  serve
      ->add_option("--max-connections", flags->options.max_connections,
                   "connections served at once; more wait in the listen queue (default 64)")
      ->check(CLI::Range(1, 4096))
      ->type_name("N");
  serve
      ->add_option("--request-timeout", flags->request_timeout_seconds,
                   "seconds to read a request or write a reply before giving up (default 10)")
      ->check(CLI::Range(1, 600))
      ->type_name("SECONDS");
  serve->callback([&global, &exit_code, flags] { exit_code = run_serve(global, *flags); });
}

}  // namespace vcpumap::cli
