// One snapshot shared by every request within a short interval, taken by one request while the
// others wait for it (single flight): 50 scrapers cost one read of /proc, not 50.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.h"
#include "util/result.h"
#include "views/prometheus_view.h"

namespace vcpumap::serve {

// What a refresh produced: the snapshot (or why there is none) and the texts served from it,
// each rendered once however many requests ask.
class CachedSnapshot {
 public:
  CachedSnapshot(Result<Snapshot> snapshot, std::string metrics_text);

  // The snapshot, or the error that stood in its way.
  const Result<Snapshot>& snapshot() const { return snapshot_; }
  // The /metrics body.
  const std::string& metrics_text() const { return metrics_text_; }
  // The /metrics body gzipped, compressed on first use: once per snapshot, not per scrape.
  const std::string& metrics_gzip() const;
  // The /api/v1/snapshot body (the `list --json` document), rendered on first use.
  const std::string& json_text() const;

 private:
  Result<Snapshot> snapshot_;
  std::string metrics_text_;
  mutable std::once_flag json_once_;
  mutable std::string json_text_;
  mutable std::once_flag gzip_once_;
  mutable std::string metrics_gzip_;
};

// `text` gzipped (RFC 1952), empty when zlib fails.
std::string gzip(std::string_view text);

class SnapshotCache {
 public:
  using Clock = std::chrono::steady_clock;
  using Take = std::function<Result<Snapshot>()>;
  using ExtraMetrics = std::function<std::string(const Snapshot&)>;

  // `take` reads the host; a snapshot younger than `max_age` is served as it is. `collectors`
  // choose the families of the metrics text; `extra`, when set, adds to the /metrics text of
  // each snapshot.
  SnapshotCache(Take take, Clock::duration max_age, std::string version,
                views::Collectors collectors = {}, ExtraMetrics extra = nullptr);

  // The current snapshot: the cached one while fresh, else a new one. Concurrent callers that
  // find it stale wait for the one refresh in flight instead of starting their own.
  std::shared_ptr<const CachedSnapshot> get();

  // Snapshots taken so far (successful or not).
  std::uint64_t snapshots_taken() const;

 private:
  std::shared_ptr<const CachedSnapshot> refresh();

  Take take_;
  ExtraMetrics extra_;
  Clock::duration max_age_;
  std::string version_;
  views::Collectors collectors_;
  views::MetricsRenderer renderer_;  // used by the one refresh in flight
  mutable std::mutex mutex_;
  std::condition_variable refreshed_;
  std::shared_ptr<const CachedSnapshot> current_;
  Clock::time_point taken_at_{};
  bool refreshing_ = false;
  std::uint64_t snapshots_ = 0;
  std::uint64_t errors_ = 0;
};

}  // namespace vcpumap::serve
