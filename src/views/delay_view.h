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

// One culprit as JSON: {"kind", "ns", ...the kind's fields}.
nlohmann::json culprit_json(const Culprit& culprit);
// One culprit in words: "db vCPU 0", "spin (pid 5000)".
std::string culprit_text(const Culprit& culprit);
// One culprit in a few characters, as serve's `culprit` label: "db:vcpu0", "db:emulator",
// "db:iothread io1", the comm of a host or kernel process, "other".
std::string culprit_label(const Culprit& culprit);
// A vCPU's largest culprits, one line each ("  95.0%  host     spin (pid 5000)"), the rest summed
// in one line past `shown`, then its mismatch note if any.
std::vector<std::string> culprit_lines(const VcpuDelay& vcpu, std::size_t shown);

}  // namespace vcpumap::views
