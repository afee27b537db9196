// The culprit bars of `vcpumap report --html` for exact recordings: a bar per vCPU, as long as
// its run delay's share of the recording, split and coloured by what it waited behind.
#pragma once

#include <string>

#include "record/analysis.h"

namespace vcpumap::views {

// A <div id="delay"> with an SVG bar per vCPU and a legend of the culprit kinds; for a recording
// without culprits (sampled, or version 1) a line saying why there are none.
std::string render_delay_bars(const record::Report& report);

}  // namespace vcpumap::views
