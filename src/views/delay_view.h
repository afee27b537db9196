// `vcpumap delay`: who each vCPU waited behind, as JSON and as one screen of text.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "collect/delay.h"

namespace vcpumap::views {

// {"duration_ns", "source", "vms": [{"name", "pid", "vcpus": [{"vcpu", "tid", "run_delay_ns",
// "attributed_ns", "behind": [{"kind", "ns", ...}], "ran_beside", "mismatch"}]}], "notes"}.
nlohmann::json delay_json(const DelayReport& report);
// One vCPU's culprits as JSON: [{"kind", "ns", ...the kind's fields}], largest first.
nlohmann::json behind_json(const VcpuDelay& vcpu);
// One vCPU's largest culprits with their shares, a line each after `indent`, and its mismatch.
std::string render_behind_text(const VcpuDelay& vcpu, std::string_view indent);
// A culprit in a few words: "web vCPU 1", "spin (pid 42)"...
std::string culprit_label(const Culprit& culprit);
// Each vCPU's delay and its largest culprits with their shares, one screen.
std::string render_delay_text(const DelayReport& report);

}  // namespace vcpumap::views
