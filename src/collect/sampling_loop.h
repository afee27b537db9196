// The one clock of sampling, and the one loop: every command that samples over time (top -b,
// top's screen, record, record --exact, audit --watch) plans its wake-ups here, from the start,
// so the intervals do not drift by the time a sample takes.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <span>

#include "collect/sampler.h"
#include "util/result.h"

namespace vcpumap {

using SteadyClock = std::chrono::steady_clock;

// Ticks at start + n * period; the period can change (a key in top), counted from then on.
class Ticker {
 public:
  explicit Ticker(SteadyClock::duration period, SteadyClock::time_point start = SteadyClock::now())
      : start_(start), period_(period) {}
  // The next tick.
  SteadyClock::time_point next() const { return start_ + ticks_ * period_; }
  // Moves to the next planned tick. A tick missed while sampling is made up at once (a
  // recording keeps every planned sample); a view that would rather not burst calls tick_at.
  void advance() { ++ticks_; }
  // From now on, one tick each `period`, the first one period from `from`.
  void set_period(SteadyClock::duration period, SteadyClock::time_point from);
  // The next tick is `when` (top's space key: now), then the period goes on from there.
  void tick_at(SteadyClock::time_point when);
  SteadyClock::duration period() const { return period_; }

 private:
  SteadyClock::time_point start_;
  SteadyClock::duration period_;
  std::int64_t ticks_ = 1;
};

// Waits until `until` or until one of `fds` is readable (or hung up): true when a descriptor
// woke it. A signal (EINTR) wakes it too, as readable, so callers look at their descriptors. A
// poll failure is an error, never taken for a timeout.
Result<bool> wait_readable(SteadyClock::time_point until, std::span<const int> fds);

struct LoopOptions {
  SteadyClock::duration period = std::chrono::seconds(1);
  std::optional<SteadyClock::duration> duration;  // the last sample is taken at start + duration
  std::optional<std::uint64_t> samples;           // stop after this many
  int stop_fd = -1;                               // readable: stop (a signalfd)
  SteadyClock::time_point start = SteadyClock::now();
};

// Why a loop ended.
enum class LoopEnd { duration, samples, stopped, by_callback };

// Samples `sampler` at every tick and hands each sample to `on_sample`, which returns false to
// end the loop (or an error, which ends it too).
Result<LoopEnd> run_sampling_loop(Sampler& sampler, const LoopOptions& options,
                                  const std::function<Result<bool>(const Sample&)>& on_sample);

}  // namespace vcpumap
