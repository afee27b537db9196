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

// One culprit as JSON: {"kind", "ns", ...the kind's fields}.
nlohmann::json culprit_json(const Culprit& culprit);
// One culprit in words: "db vCPU 0", "spin (pid 5000)".
std::string culprit_text(const Culprit& culprit);
// One culprit in a few characters, as serve's `culprit` label: "db:vcpu0", "db:emulator",
// "db:iothread io1", the comm of a host or kernel process, "other".
std::string culprit_label(const Culprit& culprit);
// A vCPU's largest culprits, one line each ("  95.0%  host     spin (pid 5000)"), the rest summed
// in one line past `shown`, then its mismatch note if any.
std::vector<std::string> culprit_lines(const VcpuDelay& vcpu, std::size_t shown,
                                       std::string_view indent = "    ");
// One vCPU's culprits as JSON: [{"kind", "ns", ...the kind's fields}], largest first.
nlohmann::json behind_json(const VcpuDelay& vcpu);
// One vCPU's largest culprits (5) with their shares, a line each after `indent`, and its
// mismatch: what `delay` and `report` print.
std::string render_behind_text(const VcpuDelay& vcpu, std::string_view indent);

}  // namespace vcpumap::views
