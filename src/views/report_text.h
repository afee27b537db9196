// `vcpumap report`: the text summary per VM and vCPU, the `perf sched map`-like timeline, and
// the JSON document.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "record/analysis.h"

namespace vcpumap::views {

// The header lines (host, mode, span, samples, events, lost events, problems) and, per VM and
// vCPU: residency, migrations (count, per second, crossings), longest stay, run delay.
std::string render_report_summary(const record::Report& report);
// One column per host CPU, one row per time slice (at most `rows`), each cell naming the vCPU
// that ran most there ("A0" = VM A's vCPU 0, "." = no vCPU); a legend names the VMs.
std::string render_report_timeline(const record::Report& report, int rows);
// {"vms": [{"pid", "name", "vcpus": [{"vcpu", "tid", "migrations", "residency": {"<cpu>": f}}]}],
//  "duration_s", "mode", "lost_events", ...}.
nlohmann::json report_json(const record::Report& report);

// The short label of a vCPU in the timeline: a letter per VM (A, B, ... AA) and the vCPU number.
std::string vm_letter(int vm_index);

}  // namespace vcpumap::views
