// The Prometheus text exposition format (version 0.0.4) of one snapshot: counters and gauges
// straight from the kernel's figures, no rates (Prometheus computes those). Names and labels are
// a public interface: docs/metrics.md lists them.
#pragma once

#include <cstdint>
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

// A label value as the text format wants it: `\` `"` and newline escaped, invalid UTF-8 bytes
// replaced by U+FFFD (Prometheus refuses a scrape that holds any).
std::string escape_label_value(std::string_view value);

// Every metric of the snapshot, HELP and TYPE lines included.
std::string render_metrics(const Snapshot& snapshot, const ExporterStats& stats);

// The per-culprit kinds kept for each vCPU in vcpumap_vcpu_waited_behind_seconds_total; the rest
// are summed into culprit "other", so a vCPU has at most this many series plus one.
inline constexpr std::size_t kWaitedBehindCulprits = 5;
// vcpumap_vcpu_waited_behind_seconds_total{vm, uuid, vcpu, culprit_kind, culprit} from the delay
// split since the exporter started: culprit is VM:vcpuN, VM:emulator, VM:iothread ID, or the comm
// of a host or kernel process; the kernel's split of each vCPU's delay, top 5 and `other`.
std::string render_waited_behind(const DelayReport& report);

// Only the exporter's own metrics: what /metrics says when the snapshot failed.
std::string render_exporter_metrics(const ExporterStats& stats);

}  // namespace vcpumap::views
