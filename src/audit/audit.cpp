#include "audit/audit.h"

#include <algorithm>

#include "audit/context.h"

namespace vcpumap::audit {

std::optional<Severity> parse_severity(std::string_view text) {
  for (auto severity : {Severity::info, Severity::warning, Severity::error}) {
    if (text == to_string(severity)) return severity;
  }
  return std::nullopt;
}

std::vector<Finding> run_rules(const AuditInput& input) {
  const AuditContext context(input);
  std::vector<Finding> findings;
  check_pin_drift(context, findings);
  check_offline_or_housekeeping(context, findings);
  check_shared_pcpu(context, findings);
  check_smt_sibling_shared(context, findings);
  check_emulator_on_vcpu_cpu(context, findings);
  check_numa_split(context, findings);
  check_floating_vcpu(context, findings);
  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    if (a.severity != b.severity) return a.severity > b.severity;
    if (a.rule != b.rule) return a.rule < b.rule;
    return a.vm < b.vm;
  });
  return findings;
}

std::vector<Finding> involving(const std::vector<Finding>& findings, const std::vector<int>& pids) {
  std::vector<Finding> kept;
  for (const auto& finding : findings) {
    const bool involved = std::any_of(finding.vm_pids.begin(), finding.vm_pids.end(), [&](int pid) {
      return std::find(pids.begin(), pids.end(), pid) != pids.end();
    });
    if (involved) kept.push_back(finding);
  }
  return kept;
}

bool any_at_or_above(const std::vector<Finding>& findings, Severity threshold) {
  return std::any_of(findings.begin(), findings.end(),
                     [threshold](const Finding& finding) { return finding.severity >= threshold; });
}

}  // namespace vcpumap::audit
