#include "views/delay_view.h"

#include <fmt/format.h>

#include "util/text.h"

namespace vcpumap::views {
namespace {

// The culprits shown per vCPU in text; the rest are summed in one line (JSON has them all).
constexpr std::size_t kTextCulprits = 5;

nlohmann::json beside_json(const VcpuDelay& vcpu);

nlohmann::json pid_json(const Culprit& culprit) {
  return culprit.pid ? nlohmann::json(*culprit.pid) : nlohmann::json();
}

}  // namespace

nlohmann::json culprit_json(const Culprit& culprit) {
  nlohmann::json out = {{"kind", to_string(culprit.kind)}, {"ns", culprit.ns}};
  switch (culprit.kind) {
    case CulpritKind::vcpu:
      out["vm"] = culprit.vm;
      out["pid"] = pid_json(culprit);
      out["vcpu"] = culprit.vcpu;
      break;
    case CulpritKind::emulator:
      out["vm"] = culprit.vm;
      out["pid"] = pid_json(culprit);
      out["tid"] = culprit.tid;
      break;
    case CulpritKind::iothread:
      out["vm"] = culprit.vm;
      out["pid"] = pid_json(culprit);
      out["iothread"] = culprit.iothread;
      break;
    case CulpritKind::host:
    case CulpritKind::kernel:
      out["comm"] = culprit.comm;
      out["pid"] = pid_json(culprit);
      break;
    case CulpritKind::other:
      out["why"] = culprit.why;
      break;
  }
  return out;
}

std::string culprit_text(const Culprit& culprit) {
  switch (culprit.kind) {
    case CulpritKind::vcpu:
      return fmt::format("{} vCPU {}", culprit.vm, culprit.vcpu);
    case CulpritKind::emulator:
      return fmt::format("{} emulator thread {}", culprit.vm, culprit.tid);
    case CulpritKind::iothread:
      return fmt::format("{} iothread {}", culprit.vm, culprit.iothread);
    case CulpritKind::host:
    case CulpritKind::kernel:
      return fmt::format("{} (pid {})", printable(culprit.comm),
                         culprit.pid ? std::to_string(*culprit.pid) : std::string("n/a"));
    case CulpritKind::other:
      return culprit.why;
  }
  return {};
}

std::string culprit_label(const Culprit& culprit) {
  switch (culprit.kind) {
    case CulpritKind::vcpu:
      return fmt::format("{}:vcpu{}", culprit.vm, culprit.vcpu);
    case CulpritKind::emulator:
      return culprit.vm + ":emulator";
    case CulpritKind::iothread:
      return culprit.vm + ":iothread " + culprit.iothread;
    case CulpritKind::host:
    case CulpritKind::kernel:
      return culprit.comm;
    case CulpritKind::other:
      return "other";
  }
  return "other";
}

nlohmann::json behind_json(const VcpuDelay& vcpu) {
  nlohmann::json behind = nlohmann::json::array();
  for (const auto& culprit : vcpu.behind) behind.push_back(culprit_json(culprit));
  return behind;
}

std::string render_behind_text(const VcpuDelay& vcpu, std::string_view indent) {
  std::string out;
  for (const auto& line : culprit_lines(vcpu, kTextCulprits, indent)) out += line + "\n";
  return out;
}

std::vector<std::string> culprit_lines(const VcpuDelay& vcpu, std::size_t shown,
                                       std::string_view indent) {
  std::vector<std::string> lines;
  const std::uint64_t total = vcpu.run_delay_ns.value_or(0);
  const double whole =
      static_cast<double>(std::max<std::uint64_t>(std::max(total, vcpu.attributed_ns), 1));
  std::uint64_t rest = 0;
  for (std::size_t i = 0; i < vcpu.behind.size(); ++i) {
    const auto& culprit = vcpu.behind[i];
    if (i >= shown) {
      rest += culprit.ns;
      continue;
    }
    lines.push_back(fmt::format("{}{:>5.1f}%  {:<8} {}", indent, 100.0 * culprit.ns / whole,
                                to_string(culprit.kind), culprit_text(culprit)));
  }
  if (rest > 0) {
    lines.push_back(fmt::format("{}{:>5.1f}%  ({} more culprits)", indent, 100.0 * rest / whole,
                                vcpu.behind.size() - shown));
  }
  if (!vcpu.mismatch.empty()) {
    lines.push_back(fmt::format("{}note: {}", indent, vcpu.mismatch));
  }
  return lines;
}

namespace {

nlohmann::json beside_json(const VcpuDelay& vcpu) {
  if (!vcpu.ran_beside) return nullptr;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& culprit : *vcpu.ran_beside) out.push_back(culprit_json(culprit));
  return out;
}

}  // namespace

nlohmann::json delay_json(const DelayReport& report) {
  nlohmann::json vms = nlohmann::json::array();
  for (const auto& vm : report.vms) {
    nlohmann::json vcpus = nlohmann::json::array();
    for (const auto& vcpu : vm.vcpus) {
      const nlohmann::json behind = behind_json(vcpu);
      vcpus.push_back({{"vcpu", vcpu.vcpu},
                       {"tid", vcpu.tid},
                       {"run_delay_ns", vcpu.run_delay_ns ? nlohmann::json(*vcpu.run_delay_ns)
                                                          : nlohmann::json(nullptr)},
                       {"attributed_ns", vcpu.attributed_ns},
                       {"behind", behind},
                       // Unmeasured (no SMT here) is unknown, not "nothing": null.
                       {"ran_beside", beside_json(vcpu)},
                       {"mismatch", vcpu.mismatch.empty() ? nlohmann::json(nullptr)
                                                          : nlohmann::json(vcpu.mismatch)}});
    }
    vms.push_back({{"name", vm.name}, {"pid", vm.pid}, {"vcpus", vcpus}});
  }
  nlohmann::json out = {{"duration_ns", report.duration_ns},
                        {"source", report.source},
                        {"vms", vms},
                        {"ran_beside_unavailable", report.ran_beside_why.empty()
                                                       ? nlohmann::json(nullptr)
                                                       : nlohmann::json(report.ran_beside_why)},
                        {"notes", report.notes}};
  if (!report.programs.empty()) {
    nlohmann::json programs = nlohmann::json::array();
    for (const auto& program : report.programs) {
      programs.push_back({{"tracepoint", program.program},
                          {"runs", program.runs},
                          {"run_time_ns", program.run_time_ns},
                          {"ns_per_run", program.runs ? nlohmann::json(double(program.run_time_ns) /
                                                                       double(program.runs))
                                                      : nlohmann::json(nullptr)}});
    }
    out["bpf_programs"] = programs;
  }
  return out;
}

std::string render_delay_text(const DelayReport& report) {
  const double window = static_cast<double>(std::max<std::uint64_t>(report.duration_ns, 1));
  std::string out =
      fmt::format("run delay over {:.2f} s, and who each vCPU waited behind\n", window / 1e9);
  for (const auto& vm : report.vms) {
    out += fmt::format("\n{} (pid {})\n", printable(vm.name), vm.pid);
    for (const auto& vcpu : vm.vcpus) {
      if (!vcpu.run_delay_ns) {
        out += fmt::format("  vCPU {:<3} tid {:<8} waited n/a (no schedstat run_delay)\n",
                           vcpu.vcpu, vcpu.tid);
        continue;
      }
      const std::uint64_t total = *vcpu.run_delay_ns;
      out += fmt::format("  vCPU {:<3} tid {:<8} waited {:>9.1f} ms ({:.1f}% of the window)\n",
                         vcpu.vcpu, vcpu.tid, total / 1e6, 100.0 * total / window);
      out += render_behind_text(vcpu, "    ");
      if (vcpu.ran_beside && !vcpu.ran_beside->empty()) {
        std::uint64_t sum = 0;
        for (const auto& culprit : *vcpu.ran_beside) sum += culprit.ns;
        out +=
            fmt::format("    ran beside another VM on its SMT sibling {:.1f} ms, most beside {}\n",
                        sum / 1e6, culprit_text(vcpu.ran_beside->front()));
      } else if (vcpu.ran_beside) {
        out += "    ran beside no other VM on its SMT sibling\n";
      }
    }
  }
  if (report.vms.empty()) out += "\nno VM is running here\n";
  if (!report.ran_beside_why.empty()) {
    out += fmt::format("\nran beside (SMT): n/a: {}\n", report.ran_beside_why);
  }
  for (const auto& note : report.notes) out += fmt::format("\nnote: {}\n", note);
  if (!report.programs.empty()) out += "\nBPF programs over the window (BPF_ENABLE_STATS)\n";
  for (const auto& program : report.programs) {
    out += fmt::format(
        "  {:<20} {:>10} runs  {}\n", program.program, program.runs,
        program.runs ? fmt::format("{:.0f} ns per run", double(program.run_time_ns) / program.runs)
                     : std::string("-"));
  }
  return out;
}

}  // namespace vcpumap::views
