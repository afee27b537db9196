// `vcpumap serve`: the Prometheus exporter and JSON API (see docs/metrics.md).
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <memory>

#include <fmt/core.h>

#include "cli/options.h"
#include "collect/delay.h"
#include "collect/sampler.h"
#include "collect/snapshot.h"
#include "serve/server.h"
#include "sources/procfs/thread_files.h"
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
  // One malloc arena. Snapshots are taken (and the metrics text built) in whichever of the HTTP
  // event loops asks, and glibc would give each thread its own arena to grow to a snapshot's
  // working set: peak RSS as many times over as there are loops. The loops allocate little
  // else, so they do not contend for the one.
  mallopt(M_ARENA_MAX, 1);
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
  // libvirt's view comes from a watcher that libvirt's own events keep current, so a scrape
  // makes no libvirt call, and a libvirt that stops answering never holds a scrape up: VMs it
  // knew keep their last labels and vcpumap_libvirt_up says 0. The cache refreshes from one
  // thread at a time.
  const SnapshotOptions snapshot_options = global.snapshot_options();
  SamplerOptions sampler_options;
  sampler_options.snapshot = snapshot_options;
  sampler_options.snapshot.use_libvirt = false;
  // Each connection holds a descriptor: the sampler keeps its files open only in what the
  // connection cap and a reserve leave of the open-file limit.
  const std::uint64_t file_limit = procfs::raise_open_file_limit();
  auto max_connections = serve::resolve_max_connections(flags.options.max_connections, file_limit);
  if (!max_connections) return report_error(max_connections.error());
  flags.options.max_connections = *max_connections;
  sampler_options.kept_file_budget = file_limit - serve::kSpareFiles - *max_connections;
  auto sampler = std::make_shared<Sampler>(std::move(sampler_options));
  std::shared_ptr<libvirt::Watcher> watcher;
  if (libvirt_asked(snapshot_options)) {
    watcher = std::make_shared<libvirt::Watcher>(snapshot_options.libvirt_uri,
                                                 snapshot_options.libvirt_timeout);
    watcher->wait_first_listing();
  }
  auto take = [sampler, watcher]() -> Result<Snapshot> {
    auto sample = sampler->sample();
    if (!sample) return sample.error();
    Snapshot snapshot = (*sample)->snapshot;
    if (watcher) join_watched(snapshot, watcher->view());
    return snapshot;
  };
  // Who each vCPU waited behind, split in the kernel since the exporter started: without BPF the
  // exporter serves everything else, and says once why this metric is missing.
  std::shared_ptr<DelayWatch> watch;
  if (!flags.options.collectors.waited_behind) {
    // switched off (--no-collector.waited_behind): nothing to load
  } else if (snapshot_options.source == SourceChoice::procfs) {
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
    // ran_beside needs SMT: where it can't be measured, said once, at the first scrape.
    auto beside_said = std::make_shared<std::atomic<bool>>(false);
    flags.options.extra_metrics = [watch, beside_said](const Snapshot& snapshot) -> std::string {
      auto report = watch->update(snapshot);
      if (!report) return std::string();
      if (!report->ran_beside_why.empty() && !beside_said->exchange(true)) {
        fmt::print(stderr,
                   "vcpumap: note: vcpumap_vcpu_ran_beside_seconds_total is not served: {}\n",
                   report->ran_beside_why);
      }
      return views::render_waited_behind(*report);
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
                   "connections open at once; past it a new one is closed at once (default "
                   "4096, or half the open-file limit when that is lower)")
      ->check(CLI::Range(1, 1 << 20))
      ->type_name("N");
  serve
      ->add_option("--max-connections-per-ip", flags->options.max_connections_per_ip,
                   "connections open at once from one client address; 0: no cap (default 256)")
      ->check(CLI::Range(0, 1 << 20))
      ->type_name("N");
  serve
      ->add_option("--request-timeout", flags->request_timeout_seconds,
                   "close a connection that sends or takes nothing for this many seconds "
                   "(default 10)")
      ->check(CLI::Range(1, 600))
      ->type_name("SECONDS");
  // node_exporter's switches: --collector.NAME on, --no-collector.NAME off.
  auto& collectors = flags->options.collectors;
  const struct {
    const char* name;
    bool* on;
    const char* what;
  } switches[] = {
      {"vcpu", &collectors.vcpu, "vcpumap_vcpu_*: a series per vCPU thread and figure (on)"},
      {"iothread", &collectors.iothread, "vcpumap_iothread_*: the same per I/O thread (on)"},
      {"emulator", &collectors.emulator, "vcpumap_emulator_*: per-VM emulator thread sums (on)"},
      {"affinity", &collectors.affinity, "the *_affinity_info series, a CPU list per thread (on)"},
      {"vm", &collectors.vm, "vcpumap_vm_*: per-VM sums of the vCPUs' figures (on)"},
      {"waited_behind", &collectors.waited_behind,
       "vcpumap_vcpu_waited_behind_seconds_total: who ran while each vCPU waited, split by BPF "
       "in the kernel (on)"},
  };
  for (const auto& entry : switches) {
    serve->add_flag(fmt::format("--collector.{},!--no-collector.{}", entry.name, entry.name),
                    *entry.on, entry.what);
  }
  serve->callback([&global, &exit_code, flags] { exit_code = run_serve(global, *flags); });
}

}  // namespace vcpumap::cli
