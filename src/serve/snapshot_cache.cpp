#include "serve/snapshot_cache.h"

#include <zlib.h>

#include <algorithm>

#include "views/json.h"
#include "views/prometheus_view.h"

namespace vcpumap::serve {

CachedSnapshot::CachedSnapshot(Result<Snapshot> snapshot, std::string metrics_text)
    : snapshot_(std::move(snapshot)), metrics_text_(std::move(metrics_text)) {}

const std::string& CachedSnapshot::json_text() const {
  std::call_once(json_once_, [this] {
    if (!snapshot_) return;
    views::write_snapshot_json(*snapshot_, [this](std::string_view text) { json_text_ += text; });
    json_text_ += "\n";
  });
  return json_text_;
}

const std::string& CachedSnapshot::metrics_gzip() const {
  std::call_once(gzip_once_, [this] { metrics_gzip_ = gzip(metrics_text_); });
  return metrics_gzip_;
}

std::string gzip(std::string_view text) {
  z_stream stream{};
  // windowBits 15 + 16: a gzip header and trailer. Level 1: the metrics text shrinks about
  // tenfold even so, and the CPU a scrape costs matters more than the last bytes.
  if (deflateInit2(&stream, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  // Grown as deflate fills it, from a tenth of the text: deflateBound's room for the worst
  // case (more than the whole text) would be zeroed and touched for output that is ~6% of it.
  std::string out;
  out.resize(std::max<std::size_t>(text.size() / 10, 4096));
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (stream.total_out == out.size()) out.resize(out.size() * 2);
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + stream.total_out);
    stream.avail_out = static_cast<uInt>(out.size() - stream.total_out);
    rc = deflate(&stream, Z_FINISH);
  }
  out.resize(stream.total_out);
  out.shrink_to_fit();
  deflateEnd(&stream);
  return rc == Z_STREAM_END ? out : std::string{};
}

SnapshotCache::SnapshotCache(Take take, Clock::duration max_age, std::string version,
                             views::Collectors collectors, ExtraMetrics extra)
    : take_(std::move(take)),
      extra_(std::move(extra)),
      max_age_(max_age),
      version_(std::move(version)),
      collectors_(collectors) {}

std::shared_ptr<const CachedSnapshot> SnapshotCache::get() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (current_ && Clock::now() - taken_at_ < max_age_) return current_;
    if (!refreshing_) break;
    // Someone else is reading /proc: their result is as fresh as ours would be.
    const auto generation = snapshots_;
    refreshed_.wait(lock, [&] { return !refreshing_; });
    if (snapshots_ != generation && current_) return current_;
  }
  refreshing_ = true;
  // Let the stale snapshot and its texts go before the new one is built, so the two are not in
  // memory at once (at 10,000 vCPU threads, ~15 MB): replies still being sent hold their own
  // reference, and everyone else waits for the new one.
  current_.reset();
  lock.unlock();
  auto fresh = refresh();
  lock.lock();
  current_ = fresh;
  taken_at_ = Clock::now();
  refreshing_ = false;
  refreshed_.notify_all();
  return fresh;
}

std::uint64_t SnapshotCache::snapshots_taken() const {
  std::lock_guard lock(mutex_);
  return snapshots_;
}

std::shared_ptr<const CachedSnapshot> SnapshotCache::refresh() {
  const auto start = Clock::now();
  // take_ may throw only on the fatal (bad_alloc...); the waiters must still be released, so
  // the flag is reset by the caller after this returns or by the catch below.
  Result<Snapshot> snapshot = [&]() -> Result<Snapshot> {
    try {
      return take_();
    } catch (const std::exception& error) {
      return Error{std::string("snapshot failed: ") + error.what()};
    }
  }();
  views::ExporterStats stats;
  stats.snapshot_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stats.success = snapshot.ok();
  stats.version = version_;
  {
    std::lock_guard lock(mutex_);
    ++snapshots_;
    if (!snapshot) ++errors_;
    stats.snapshots_total = snapshots_;
    stats.errors_total = errors_;
  }
  // The extra families first, so that the whole text is one allocation of its final size (at
  // 10,000 vCPUs, appending them after doubled a 9 MB text) and what made them is gone before.
  const std::string extra = snapshot && extra_ ? extra_(*snapshot) : std::string();
  std::string text = snapshot ? renderer_.render(*snapshot, stats, collectors_, extra)
                              : views::render_exporter_metrics(stats);
  return std::make_shared<const CachedSnapshot>(std::move(snapshot), std::move(text));
}

}  // namespace vcpumap::serve
