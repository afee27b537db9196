// `vcpumap delay`: who each vCPU waited behind, as JSON and as one screen of text.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "collect/delay.h"

namespace vcpumap::views {

// {"duration_ns", "source", "vms": [{"name", "pid", "vcpus": [{"vcpu", "tid", "run_delay_ns",
// "attributed_ns", "behind": [{"kind", "ns", ...}], "ran_beside", "mismatch"}]}], "notes"}.
nlohmann::json delay_json(const DelayReport& report);
// Each vCPU's delay and its largest culprits with their shares, one screen.
std::string render_delay_text(const DelayReport& report);

}  // namespace vcpumap::views
