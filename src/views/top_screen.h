// The full-screen `vcpumap top` (ncurses): draws what top_view.h gives and handles the keys.
#pragma once

#include <functional>

#include "collect/sampler.h"
#include "views/top_view.h"

namespace vcpumap::views {

// Runs the live view on the terminal until `q`, or until `iterations` refreshes when it is
// above 0. `sampler` has taken its first sample already; `waits_for` gives each new sample's
// delay split (called once per sample).
Status run_top_screen(Sampler& sampler, TopSettings& settings, int iterations,
                      const std::function<TopWaits(const Sample&)>& waits_for);

}  // namespace vcpumap::views
