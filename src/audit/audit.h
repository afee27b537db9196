// `vcpumap audit`: pinning checks over three layers — what was configured (libvirt <cputune>,
// nova's hw:cpu_policy), what is enforced (thread affinity and cgroup cpusets) and what
// happened (CPUs threads ran on). Pure functions of an AuditInput, so fixtures can test them.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "audit/finding.h"
#include "audit/observe.h"

namespace vcpumap::audit {

// "error", "warning" or "info"; nullopt for anything else.
std::optional<Severity> parse_severity(std::string_view text);

// Every finding, sorted by severity (errors first), then rule, then VM.
std::vector<Finding> run_rules(const AuditInput& input);

// The findings that involve one of these VM PIDs.
std::vector<Finding> involving(const std::vector<Finding>& findings, const std::vector<int>& pids);

// True when some finding is at or above `threshold`.
bool any_at_or_above(const std::vector<Finding>& findings, Severity threshold);

}  // namespace vcpumap::audit
