#include "views/audit_view.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "util/text.h"

namespace vcpumap::views {
namespace {

std::string upper(std::string_view word) {
  std::string text(word);
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string plural(std::size_t count, const char* word) {
  return fmt::format("{} {}{}", count, word, count == 1 ? "" : "s");
}

}  // namespace

std::string render_audit(const std::vector<audit::Finding>& findings, int vms_audited,
                         std::chrono::milliseconds watched) {
  std::string text;
  for (const auto& finding : findings) {
    std::vector<std::string> vms;
    for (const auto& vm : finding.vms) vms.push_back(printable(vm));
    text += fmt::format("{:<8} {}  {}", upper(to_string(finding.severity)), finding.rule,
                        fmt::join(vms, ", "));
    if (!finding.cpus.empty()) {
      text += fmt::format("  {} {}", finding.cpus.count() == 1 ? "CPU" : "CPUs",
                          finding.cpus.to_list());
    }
    text += fmt::format("\n  {}\n", printable(finding.message));
    if (!finding.fix.empty()) text += fmt::format("  fix: {}\n", printable(finding.fix));
    text += "\n";
  }
  const auto watch =
      watched.count() > 0 ? fmt::format(", watched {:.1f} s", watched.count() / 1000.0) : "";
  if (findings.empty()) {
    text += fmt::format("no findings in {} ({}): configured, enforced and actual pinning agree\n",
                        plural(static_cast<std::size_t>(vms_audited), "VM"),
                        watch.empty() ? "one look" : watch.substr(2));
    return text;
  }
  std::vector<std::string> counts;
  for (auto severity : {audit::Severity::error, audit::Severity::warning, audit::Severity::info}) {
    const auto count = std::count_if(findings.begin(), findings.end(),
                                     [severity](const auto& f) { return f.severity == severity; });
    if (count > 0) {
      counts.push_back(
          plural(static_cast<std::size_t>(count), std::string(to_string(severity)).c_str()));
    }
  }
  text +=
      fmt::format("{} ({}) in {}{}\n", plural(findings.size(), "finding"), fmt::join(counts, ", "),
                  plural(static_cast<std::size_t>(vms_audited), "VM"), watch);
  return text;
}

nlohmann::json audit_json(const std::vector<audit::Finding>& findings) {
  using nlohmann::json;
  json rows = json::array();
  for (const auto& finding : findings) {
    json threads = json::array();
    for (const auto& thread : finding.threads) {
      json row = {{"vm", thread.vm}, {"tid", thread.tid}, {"role", to_string(thread.role)}};
      if (thread.role == ThreadRole::vcpu) row["vcpu"] = thread.vcpu;
      if (thread.role == ThreadRole::iothread) row["iothread"] = thread.iothread;
      threads.push_back(std::move(row));
    }
    rows.push_back({{"rule", finding.rule},
                    {"severity", to_string(finding.severity)},
                    {"vm", finding.vm},
                    {"vms", finding.vms},
                    {"threads", std::move(threads)},
                    {"cpus", finding.cpus.cpus()},
                    {"message", finding.message},
                    {"fix", finding.fix.empty() ? json(nullptr) : json(finding.fix)}});
  }
  return {{"findings", std::move(rows)}};
}

}  // namespace vcpumap::views
