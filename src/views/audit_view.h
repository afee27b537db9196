// What `vcpumap audit` prints: findings as text blocks or as the {"findings": [...]} document.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/finding.h"

namespace vcpumap::views {

// One block per finding (severity, rule, VMs, CPUs; the sentence; the fix), then a summary line
// counting findings by severity over `vms_audited` VMs.
std::string render_audit(const std::vector<audit::Finding>& findings, int vms_audited,
                         std::chrono::milliseconds watched);

// {"findings": [{"rule", "severity", "vm", "vms", "threads", "cpus", "message", "fix"}]}; fix is
// null when there is no command to give.
nlohmann::json audit_json(const std::vector<audit::Finding>& findings);

}  // namespace vcpumap::views
