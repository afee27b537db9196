#include "views/topology_view.h"

#include <map>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "util/text.h"
#include "views/table.h"

namespace vcpumap::views {
namespace {

using nlohmann::json;

// One vCPU as the topology shows it on one CPU.
struct VcpuOnCpu {
  const Vm* vm = nullptr;
  const VmThread* thread = nullptr;
  bool last_ran_here = false;
  bool pinned_here = false;  // its affinity is this CPU alone
};

// For each CPU, the vCPUs whose thread last ran there (stat field 39) or may run nowhere else.
std::map<int, std::vector<VcpuOnCpu>> vcpus_by_cpu(const std::vector<Vm>& vms) {
  std::map<int, std::vector<VcpuOnCpu>> by_cpu;
  for (const auto& vm : vms) {
    for (const VmThread* thread : vm.vcpus()) {
      const int last = thread->facts.last_cpu;
      const auto& affinity = thread->facts.affinity;
      const int pinned = affinity.count() == 1 ? affinity.cpus().front() : -1;
      if (last >= 0) by_cpu[last].push_back({&vm, thread, true, last == pinned});
      // Just after a re-pin the thread may not have moved yet: show it where it must go too.
      if (pinned >= 0 && pinned != last) by_cpu[pinned].push_back({&vm, thread, false, true});
    }
  }
  return by_cpu;
}

// "NAME:vcpuN", the VM by its pid when it has no name; names are made terminal-safe.
std::string vcpu_label(const VcpuOnCpu& entry) {
  const std::string vm =
      entry.vm->name.empty() ? std::to_string(entry.vm->pid) : printable(entry.vm->name);
  return fmt::format("{}:vcpu{}{}", vm, entry.thread->vcpu, entry.pinned_here ? "*" : "");
}

std::string number_or_dash(int number) {
  return number < 0 ? "-" : std::to_string(number);
}

json number_or_null(int number) {
  return number < 0 ? json(nullptr) : json(number);
}

json string_or_null(const std::string& text) {
  return text.empty() ? json(nullptr) : json(text);
}

// lscpu's names: L1d, L1i, L2, L3 (a split cache beyond L1 would be L2d/L2i).
std::string cache_name(const Cache& cache) {
  const char* suffix = cache.type == "Data" ? "d" : cache.type == "Instruction" ? "i" : "";
  return fmt::format("L{}{}", cache.level, suffix);
}

// lscpu's "L1d cache: 64 KiB (2 instances)": the total over instances of every size.
std::vector<std::pair<std::string, std::string>> cache_lines(const std::vector<Cache>& caches) {
  std::map<std::tuple<int, std::string>, std::pair<std::uint64_t, int>> totals;
  std::vector<std::tuple<int, std::string>> order;
  for (const auto& cache : caches) {
    const auto key = std::make_tuple(cache.level, cache_name(cache));
    if (!totals.contains(key)) order.push_back(key);
    auto& [bytes, instances] = totals[key];
    bytes += cache.size_bytes * static_cast<std::uint64_t>(cache.instances);
    instances += cache.instances;
  }
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& key : order) {
    const auto& [bytes, instances] = totals[key];
    lines.emplace_back(
        fmt::format("{} cache:", std::get<1>(key)),
        fmt::format("{} ({} instance{})", human_size(bytes), instances, instances == 1 ? "" : "s"));
  }
  return lines;
}

}  // namespace

std::string human_size(std::uint64_t bytes) {
  // util-linux's size_to_human_string: binary units, one decimal rounded, ".0" left out.
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int exponent = 0;  // a multiple of 10
  while (exponent < 60 && bytes >= (std::uint64_t{1} << (exponent + 10))) exponent += 10;
  std::uint64_t whole = bytes >> exponent;
  const std::uint64_t remainder = bytes - (whole << exponent);
  std::uint64_t tenths = 0;
  if (remainder != 0) {
    // Three digits, then rounded to one, as util-linux does.
    const std::uint64_t thousandths =
        exponent > 50 ? (remainder >> 10) * 1000 >> (exponent - 10) : remainder * 1000 >> exponent;
    tenths = (thousandths + 50) / 100;
    if (tenths == 10) {
      ++whole;
      tenths = 0;
    }
  }
  if (tenths == 0) return fmt::format("{} {}", whole, kUnits[exponent / 10]);
  return fmt::format("{}.{} {}", whole, tenths, kUnits[exponent / 10]);
}

std::string render_topology_text(const Topology& topology, const std::vector<Vm>& vms) {
  std::vector<std::pair<std::string, std::string>> summary;
  summary.emplace_back("CPU(s):", std::to_string(topology.present.count()));
  summary.emplace_back("On-line CPU(s) list:", topology.online.to_list());
  // lscpu's off-line list: CPUs that exist but are not online (not the kernel's `offline`
  // file, which adds every possible-but-absent hot-plug slot).
  if (const CpuSet offline = topology.present - topology.online; !offline.empty()) {
    summary.emplace_back("Off-line CPU(s) list:", offline.to_list());
  }
  if (!topology.isolated.empty()) {
    summary.emplace_back("Isolated CPU(s) list:", topology.isolated.to_list());
  }
  if (!topology.model_name.empty()) summary.emplace_back("Model name:", topology.model_name);
  summary.emplace_back("Thread(s) per core:", std::to_string(topology.threads_per_core));
  const int cores_per_socket = topology.packages > 0 ? topology.cores / topology.packages : 0;
  summary.emplace_back("Core(s) per socket:", std::to_string(cores_per_socket));
  summary.emplace_back("Socket(s):", std::to_string(topology.packages));
  if (!topology.hypervisor_vendor.empty()) {
    summary.emplace_back("Hypervisor vendor:", topology.hypervisor_vendor);
  }
  for (auto& line : cache_lines(topology.caches)) summary.push_back(std::move(line));
  summary.emplace_back("NUMA node(s):", std::to_string(topology.nodes.size()));
  for (const auto& node : topology.nodes) {
    summary.emplace_back(fmt::format("NUMA node{} CPU(s):", node.node), node.cpus.to_list());
  }

  std::size_t label_width = 0;
  for (const auto& [label, value] : summary) label_width = std::max(label_width, label.size());
  std::string text;
  for (const auto& [label, value] : summary) {
    text += fmt::format("{:<{}} {}\n", label, label_width, value);
  }

  const auto by_cpu = vcpus_by_cpu(vms);
  bool any_pinned = false;
  // The ISOLATED column only where the kernel isolates CPUs (isolcpus=), as lscpu's optional
  // columns appear only when they say something.
  const bool show_isolated = !topology.isolated.empty();
  std::vector<std::string> header = {"CPU", "NODE", "SOCKET", "CORE", "ONLINE", "SIBLINGS"};
  if (show_isolated) header.push_back("ISOLATED");
  header.push_back("VCPUS");
  Table table(std::move(header));
  for (const auto& cpu : topology.cpus) {
    std::string vcpus;
    if (auto it = by_cpu.find(cpu.cpu); it != by_cpu.end()) {
      for (const auto& entry : it->second) {
        if (!vcpus.empty()) vcpus += ' ';
        vcpus += vcpu_label(entry);
        any_pinned = any_pinned || entry.pinned_here;
      }
    }
    std::vector<std::string> row = {
        std::to_string(cpu.cpu),     number_or_dash(cpu.node),
        number_or_dash(cpu.package), number_or_dash(cpu.core),
        cpu.online ? "yes" : "no",   cpu.siblings.empty() ? "-" : cpu.siblings.to_list()};
    if (show_isolated) row.push_back(cpu.isolated ? "yes" : "no");
    row.push_back(std::move(vcpus));
    table.add_row(std::move(row));
  }
  text += '\n';
  text += table.render();
  if (any_pinned) text += "* pinned to this CPU alone; the others last ran here\n";
  return text;
}

json topology_json(const Topology& topology, const std::vector<Vm>& vms) {
  const auto by_cpu = vcpus_by_cpu(vms);
  json cpus = json::array();
  for (const auto& cpu : topology.cpus) {
    json vcpus = json::array();
    if (auto it = by_cpu.find(cpu.cpu); it != by_cpu.end()) {
      for (const auto& entry : it->second) {
        vcpus.push_back({{"vm", string_or_null(entry.vm->name)},
                         {"pid", entry.vm->pid},
                         {"vcpu", entry.thread->vcpu},
                         {"tid", entry.thread->tid},
                         {"last_ran_here", entry.last_ran_here},
                         {"pinned_here", entry.pinned_here}});
      }
    }
    cpus.push_back({{"cpu", cpu.cpu},
                    {"core", number_or_null(cpu.core)},
                    {"package", number_or_null(cpu.package)},
                    {"node", number_or_null(cpu.node)},
                    {"online", cpu.online},
                    {"isolated", cpu.isolated},
                    {"siblings", cpu.siblings.cpus()},
                    {"vcpus", vcpus}});
  }
  json nodes = json::array();
  for (const auto& node : topology.nodes) {
    nodes.push_back({{"node", node.node}, {"cpus", node.cpus.cpus()}});
  }
  json caches = json::array();
  for (const auto& cache : topology.caches) {
    caches.push_back({{"level", cache.level},
                      {"type", cache.type},
                      {"size_bytes", cache.size_bytes},
                      {"instances", cache.instances}});
  }
  return {{"cpus", cpus},
          {"possible", topology.possible.cpus()},
          {"present", topology.present.cpus()},
          {"online", topology.online.cpus()},
          {"offline", (topology.present - topology.online).cpus()},
          {"isolated", topology.isolated.cpus()},
          {"packages", topology.packages},
          {"cores", topology.cores},
          {"threads_per_core", topology.threads_per_core},
          {"numa_nodes", topology.nodes.size()},
          {"nodes", nodes},
          {"caches", caches},
          {"model_name", string_or_null(topology.model_name)},
          {"hypervisor_vendor", string_or_null(topology.hypervisor_vendor)}};
}

}  // namespace vcpumap::views
