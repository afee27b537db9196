#include "collect/sampling_loop.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace vcpumap {

void Ticker::set_period(SteadyClock::duration period, SteadyClock::time_point from) {
  period_ = period;
  start_ = from;
  ticks_ = 1;
}

void Ticker::tick_at(SteadyClock::time_point when) {
  start_ = when - period_;
  ticks_ = 1;
}

Result<bool> wait_readable(SteadyClock::time_point until, std::span<const int> fds) {
  std::vector<pollfd> polled;
  for (const int fd : fds) {
    if (fd >= 0) polled.push_back({fd, POLLIN, 0});
  }
  for (;;) {
    const auto left = until - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) return false;
    // Rounded up, so a wait never ends a little early and spins.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    const int ready =
        ::poll(polled.data(), polled.size(), static_cast<int>(std::min<long long>(ms, 60'000)));
    if (ready > 0) return true;
    if (ready == 0) continue;  // the time is up, or a long wait goes on
    if (errno == EINTR) return true;
    return make_error(ExitCode::failure, "waiting for the next sample failed: {}",
                      std::strerror(errno));
  }
}

Result<LoopEnd> run_sampling_loop(Sampler& sampler, const LoopOptions& options,
                                  const std::function<Result<bool>(const Sample&)>& on_sample) {
  Ticker ticker(options.period, options.start);
  const int stop_fds[] = {options.stop_fd};
  for (std::uint64_t taken = 0;; ticker.advance()) {
    if (options.samples && taken >= *options.samples) return LoopEnd::samples;
    const auto tick = ticker.next();
    const bool last = options.duration && tick - options.start >= *options.duration;
    const auto wake = last ? options.start + *options.duration : tick;
    for (;;) {
      auto woke = wait_readable(wake, stop_fds);
      if (!woke) return woke.error();
      if (!*woke) break;  // the tick
      pollfd stop{options.stop_fd, POLLIN, 0};
      if (options.stop_fd >= 0 && ::poll(&stop, 1, 0) > 0) return LoopEnd::stopped;
      // Another signal interrupted the wait: wait on for the same tick.
    }
    auto sample = sampler.sample();
    if (!sample) return sample.error();
    ++taken;
    auto go_on = on_sample(**sample);
    if (!go_on) return go_on.error();
    if (!*go_on) return LoopEnd::by_callback;
    if (last) return LoopEnd::duration;
  }
}

}  // namespace vcpumap
