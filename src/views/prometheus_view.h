// The Prometheus text exposition format (version 0.0.4) of one snapshot: counters and gauges
// straight from the kernel's figures, no rates (Prometheus computes those). Names and labels are
// a public interface: docs/metrics.md lists them.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "collect/delay.h"
#include "core/model.h"
#include "util/version.h"

namespace vcpumap::views {

// The HTTP Content-Type of what render_metrics gives.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// What the exporter knows about its own work, exposed beside the snapshot's figures.
struct ExporterStats {
  double snapshot_seconds = 0;        // how long the snapshot behind this text took to take
  std::uint64_t snapshots_total = 0;  // snapshots taken since start (each one reads /proc once)
  std::uint64_t errors_total = 0;     // snapshots that failed since start
  bool success = true;                // false: the last snapshot failed and only these show
  std::string version = kVersion;     // vcpumap's version, for vcpumap_build_info
};

// The series families /metrics serves, switched as node_exporter's collectors are
// (`--collector.NAME`, `--no-collector.NAME`). docs/metrics.md gives the series each costs.
struct Collectors {
  bool vcpu = true;      // vcpumap_vcpu_*: one series per vCPU thread and figure
  bool iothread = true;  // vcpumap_iothread_*: the same per I/O thread
  bool emulator = true;  // vcpumap_emulator_*: sums over each VM's emulator threads
  bool affinity = true;  // the *_affinity_info series (a cpus label per thread)
  bool vm = true;        // vcpumap_vm_*: per-VM sums over the vCPUs, and vCPUs off their pins
  // vcpumap_vcpu_waited_behind_seconds_total: who ran while each vCPU waited, split in the
  // kernel by BPF (absent, with a note, where BPF can't run).
  bool waited_behind = true;
};

// A label value as the text format wants it: `\` `"` and newline escaped, invalid UTF-8 bytes
// replaced by U+FFFD (Prometheus refuses a scrape that holds any).
std::string escape_label_value(std::string_view value);

// Every metric of the snapshot the collectors ask for, HELP and TYPE lines included. The host's
// CPUs, vcpumap_vms, vcpumap_vm_info and the exporter's own metrics are always there.
std::string render_metrics(const Snapshot& snapshot, const ExporterStats& stats,
                           const Collectors& collectors = {});

// The per-family sample buffers of a render, kept for the next one: at 10,000 vCPUs the families
// hold 8 MB, which would otherwise be grown by doubling (copies and fresh pages) at every scrape.
class SampleBuffers {
 public:
  // The next family's buffer, empty, with the capacity it had in the last render.
  std::string& next();
  // Starts a render: the same buffers are handed out again, in the same order.
  void rewind() { used_ = 0; }

 private:
  std::deque<std::string> buffers_;  // a deque: handed-out references survive its growth
  std::size_t used_ = 0;
};

// render_metrics for an exporter, one snapshot after another, reusing its buffers. Not for two
// threads at once.
class MetricsRenderer {
 public:
  // What render_metrics gives, then `extra` (more families), in one allocation.
  std::string render(const Snapshot& snapshot, const ExporterStats& stats,
                     const Collectors& collectors = {}, std::string_view extra = {});

 private:
  SampleBuffers buffers_;
};

// The per-culprit kinds kept for each vCPU in vcpumap_vcpu_waited_behind_seconds_total; the rest
// are summed into culprit "other", so a vCPU has at most this many series plus one.
inline constexpr std::size_t kWaitedBehindCulprits = 5;
// vcpumap_vcpu_waited_behind_seconds_total{vm, uuid, vcpu, culprit_kind, culprit} from the delay
// split since the exporter started: culprit is VM:vcpuN, VM:emulator, VM:iothread ID, or the comm
// of a host or kernel process; the kernel's split of each vCPU's delay, top 5 and `other`. On
// SMT hosts also vcpumap_vcpu_ran_beside_seconds_total, with the same labels and bound.
std::string render_waited_behind(const DelayReport& report);

// Only the exporter's own metrics: what /metrics says when the snapshot failed.
std::string render_exporter_metrics(const ExporterStats& stats);

}  // namespace vcpumap::views
