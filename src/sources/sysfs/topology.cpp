// The host's CPU topology: hwloc reads ROOT/sys (it knows the odd machines: sparse and
// interleaved numbering, hybrid cores, missing files of old kernels); the kernel's CPU lists,
// the model name and the hypervisor vendor come straight from files under the same ROOT.
#include "sources/sysfs/topology.h"

#include <hwloc.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "util/text.h"

namespace vcpumap {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A kernel CPU list file (possible, present, online, isolated); nullopt when the kernel has no
// such file. A file that is there but unreadable as a list is an error: never guess around it.
Result<std::optional<CpuSet>> read_cpu_list(const fs::path& path) {
  const auto text = read_text(path);
  if (!text) return std::optional<CpuSet>();
  auto set = CpuSet::parse_list(*text);
  if (!set) {
    return make_error(ExitCode::failure, "{}: not a CPU list ({})", path.string(),
                      set.error().message);
  }
  return std::optional<CpuSet>(std::move(*set));
}

std::optional<int> read_int(const fs::path& path) {
  const auto text = read_text(path);
  if (!text) return std::nullopt;
  const auto value = parse_i64(trim(*text));
  if (!value || *value < 0 || *value > CpuSet::kMaxCpu * 16) return std::nullopt;
  return static_cast<int>(*value);
}

// N for every "<prefix>N" entry of a folder (cpu0, cpu1... or node0...).
CpuSet numbered_entries(const fs::path& folder, std::string_view prefix) {
  CpuSet numbers;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const auto number = parse_u64(std::string_view(name).substr(prefix.size()));
    if (number && *number <= static_cast<std::uint64_t>(CpuSet::kMaxCpu)) {
      numbers.add(static_cast<int>(*number));
    }
  }
  return numbers;
}

CpuSet to_cpuset(hwloc_const_bitmap_t bitmap) {
  CpuSet set;
  // An infinite bitmap (weight -1) would never end the loop; no CPU set we read is one.
  if (bitmap == nullptr || hwloc_bitmap_weight(bitmap) < 0) return set;
  int cpu = 0;
  hwloc_bitmap_foreach_begin(cpu, bitmap) {
    if (cpu > CpuSet::kMaxCpu) break;
    set.add(cpu);
  }
  hwloc_bitmap_foreach_end();
  return set;
}

int os_index_or_unknown(const hwloc_obj* object) {
  if (object == nullptr || object->os_index == HWLOC_UNKNOWN_INDEX) return -1;
  return static_cast<int>(object->os_index);
}

struct HwlocDeleter {
  void operator()(hwloc_topology* topology) const { hwloc_topology_destroy(topology); }
};
using HwlocTopology = std::unique_ptr<hwloc_topology, HwlocDeleter>;

// hwloc 2.9 has no call to set the Linux fsroot (hwloc_topology_set_fsroot went away in 2.0):
// its Linux backend reads HWLOC_FSROOT when hwloc_topology_load() instantiates it. So the
// variable is set just around the load and what was there before is put back. setenv is not
// thread-safe: no other thread may touch the environment while a topology loads.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* previous = std::getenv(name)) previous_ = previous;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (previous_) {
      ::setenv(name_, previous_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> previous_;
};

Result<HwlocTopology> load_hwloc(const fs::path& root) {
  hwloc_topology_t raw = nullptr;
  int init_status = 0;
  {
    // hwloc_topology_init loads hwloc's plugins (Debian's libhwloc-plugins: GL, OpenCL, PCI, XML)
    // and with them X11, OpenCL and libpciaccess; we read CPUs from sysfs only, so they would
    // only cost start-up time.
    const ScopedEnv no_plugins("HWLOC_PLUGINS_BLACKLIST",
                               "hwloc_gl,hwloc_opencl,hwloc_pci,hwloc_xml_libxml");
    init_status = hwloc_topology_init(&raw);
  }
  if (init_status != 0) {
    return make_error(ExitCode::failure, "hwloc could not start: {}", std::strerror(errno));
  }
  HwlocTopology topology(raw);
  // hwloc's defaults already skip I/O, Misc and instruction caches; say so explicitly (PCI
  // discovery is the slow part of a load) and keep instruction caches for lscpu's L1i line.
  // Groups stay at their default (kept where they bring structure): without them a NUMA node
  // that spans several packages gets the whole machine's cpuset (seen on 96em64t).
  hwloc_topology_set_io_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_type_filter(raw, HWLOC_OBJ_MISC, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_type_filter(raw, HWLOC_OBJ_MEMCACHE, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_cache_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_ALL);
  hwloc_topology_set_icache_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_ALL);
  // The host's CPUs, not just those of the cgroup vcpumap happens to run in.
  hwloc_topology_set_flags(raw, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
  // The x86 backend runs CPUID on the machine we run on: under another ROOT it mixes this
  // machine's CPU model and caches into the captured one's (seen with hwloc 2.9), and on "/"
  // it binds our thread to every CPU in turn. sysfs holds everything we need. Where hwloc was
  // built without x86 support the name is unknown; the call's result does not matter then.
  hwloc_topology_set_components(raw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "x86");

  std::error_code error;
  const fs::path absolute = fs::absolute(root, error).lexically_normal();
  int status = 0;
  int load_errno = 0;
  {
    const ScopedEnv fsroot("HWLOC_FSROOT", absolute.string());
    status = hwloc_topology_load(raw);
    load_errno = errno;
  }
  if (status != 0) {
    return make_error(ExitCode::failure, "hwloc could not read the CPU topology under {}: {}",
                      root.string(), std::strerror(load_errno));
  }
  return topology;
}

std::string cache_type_name(hwloc_obj_cache_type_t type) {
  switch (type) {
    case HWLOC_OBJ_CACHE_DATA:
      return "Data";
    case HWLOC_OBJ_CACHE_INSTRUCTION:
      return "Instruction";
    case HWLOC_OBJ_CACHE_UNIFIED:
      return "Unified";
  }
  return "Unified";
}

// One entry per (level, type, size of an instance): a hybrid CPU's P- and E-cores have L1 and
// L2 caches of different sizes, and lscpu's totals need each size with its count.
std::vector<Cache> read_caches(hwloc_topology_t topology) {
  // Key: level, then Data before Instruction before Unified (lscpu's L1d, L1i order), then the
  // larger instances first (a hybrid CPU's performance cores before its efficiency cores).
  auto type_rank = [](hwloc_obj_cache_type_t type) {
    return type == HWLOC_OBJ_CACHE_DATA ? 0 : type == HWLOC_OBJ_CACHE_INSTRUCTION ? 1 : 2;
  };
  using Key = std::tuple<int, int, std::uint64_t>;
  std::map<Key, Cache, std::less<>> by_kind;
  for (int type = HWLOC_OBJ_L1CACHE; type <= HWLOC_OBJ_L3ICACHE; ++type) {
    const auto object_type = static_cast<hwloc_obj_type_t>(type);
    if (!hwloc_obj_type_is_cache(object_type)) continue;
    hwloc_obj_t object = nullptr;
    while ((object = hwloc_get_next_obj_by_type(topology, object_type, object)) != nullptr) {
      const auto& attr = object->attr->cache;
      const Key key{static_cast<int>(attr.depth), type_rank(attr.type), ~attr.size};
      auto [it, inserted] = by_kind.try_emplace(key);
      if (inserted) {
        it->second = {static_cast<int>(attr.depth), cache_type_name(attr.type), attr.size, 0};
      }
      ++it->second.instances;
    }
  }
  std::vector<Cache> caches;
  for (auto& [key, cache] : by_kind) caches.push_back(std::move(cache));
  return caches;
}

// The value of the first "key : value" line of /proc/cpuinfo with this key, trimmed.
std::optional<std::string> cpuinfo_field(std::string_view cpuinfo, std::string_view key) {
  while (!cpuinfo.empty()) {
    const auto end = cpuinfo.find('\n');
    const std::string_view line = cpuinfo.substr(0, end);
    cpuinfo = end == std::string_view::npos ? std::string_view() : cpuinfo.substr(end + 1);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos && trim(line.substr(0, colon)) == key) {
      return std::string(trim(line.substr(colon + 1)));
    }
  }
  return std::nullopt;
}

bool has_word(std::string_view text, std::string_view word) {
  std::size_t start = 0;
  while ((start = text.find(word, start)) != std::string_view::npos) {
    const bool starts = start == 0 || text[start - 1] == ' ' || text[start - 1] == '\t';
    const std::size_t after = start + word.size();
    const bool ends =
        after == text.size() || text[after] == ' ' || text[after] == '\t' || text[after] == '\n';
    if (starts && ends) return true;
    start = after;
  }
  return false;
}

// lscpu takes the vendor from the CPUID hypervisor leaf (0x40000000), which only describes the
// machine we run on. From files under ROOT, in this order:
//  1. /proc/cpuinfo: on x86 the "hypervisor" flag (CPUID.1:ECX[31], which lscpu also tests)
//     says whether the host is a VM at all; without it the answer is "" (bare metal).
//  2. sys/hypervisor/type: "xen" -> Xen (Xen's own sysfs node).
//  3. The paravirtual clocksources in sys/devices/system/clocksource/clocksource0/
//     available_clocksource: the kernel registers kvm-clock only when CPUID says KVM
//     (kvm_para_available), hyperv_clocksource_* only for Microsoft's signature, xen for Xen.
//     This is what this machine (a Firecracker/KVM guest without DMI) shows: "tsc kvm-clock".
//  4. DMI sys/class/dmi/id/{sys_vendor,product_name}: "QEMU" and product "KVM" -> KVM,
//     "Amazon EC2", "Google", "OpenStack" -> KVM (Nitro, GCE and nova run KVM; Xen-based EC2
//     is caught at 2), "Microsoft Corporation" -> Microsoft, "VMware" -> VMware,
//     "innotek GmbH" -> Oracle (VirtualBox), "Parallels" -> Parallels, "Xen" -> Xen.
//  5. A VM (step 1) that nothing names -> "unknown", so the output still says it is a VM.
// Without a flags line (not x86) only steps 2-4 can tell, and nothing found means "".
std::string read_hypervisor_vendor(const fs::path& root, std::string_view cpuinfo) {
  const auto flags = cpuinfo_field(cpuinfo, "flags");
  if (flags && !has_word(*flags, "hypervisor")) return "";

  if (const auto type = read_text(root / "sys/hypervisor/type")) {
    if (trim(*type) == "xen") return "Xen";
  }
  if (const auto clocks =
          read_text(root / "sys/devices/system/clocksource/clocksource0/available_clocksource")) {
    if (has_word(*clocks, "kvm-clock")) return "KVM";
    if (clocks->find("hyperv_clocksource") != std::string::npos) return "Microsoft";
    if (has_word(*clocks, "xen")) return "Xen";
  }
  const std::string dmi_vendor(trim(read_text(root / "sys/class/dmi/id/sys_vendor").value_or("")));
  const std::string dmi_product(
      trim(read_text(root / "sys/class/dmi/id/product_name").value_or("")));
  static constexpr std::pair<std::string_view, std::string_view> kDmiVendors[] = {
      {"QEMU", "KVM"},
      {"Amazon EC2", "KVM"},
      {"Google", "KVM"},
      {"OpenStack", "KVM"},
      {"Microsoft Corporation", "Microsoft"},
      {"VMware", "VMware"},
      {"innotek GmbH", "Oracle"},
      {"Parallels", "Parallels"},
      {"Xen", "Xen"}};
  for (const auto& [needle, vendor] : kDmiVendors) {
    if (dmi_vendor.starts_with(needle)) return std::string(vendor);
  }
  if (dmi_product == "KVM" || dmi_product.starts_with("KVM ")) return "KVM";
  return flags ? "unknown" : "";
}

// One CPU: where it sits (kernel core_id, package, node) and its SMT siblings.
Cpu describe_cpu(hwloc_topology_t hwloc, const std::vector<hwloc_obj_t>& nodes,
                 const fs::path& cpu_dir, const Topology& topology, int number) {
  Cpu cpu;
  cpu.cpu = number;
  cpu.online = topology.online.contains(number);
  cpu.isolated = topology.isolated.contains(number);
  const fs::path own_dir = cpu_dir / fmt::format("cpu{}", number);
  if (hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(hwloc, static_cast<unsigned>(number))) {
    // hwloc gives a Core the kernel's core_id as os_index, a Package its physical_package_id.
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(hwloc, HWLOC_OBJ_CORE, pu);
    cpu.core = os_index_or_unknown(core);
    cpu.package = os_index_or_unknown(hwloc_get_ancestor_obj_by_type(hwloc, HWLOC_OBJ_PACKAGE, pu));
    if (cpu.online) cpu.siblings = core ? to_cpuset(core->cpuset) : to_cpuset(pu->cpuset);
  }
  // An offline CPU has no hwloc object; some kernels still show its topology files.
  if (cpu.core < 0) cpu.core = read_int(own_dir / "topology/core_id").value_or(-1);
  if (cpu.package < 0) {
    cpu.package = read_int(own_dir / "topology/physical_package_id").value_or(-1);
  }
  // A node's complete cpuset comes from its cpumap, which may keep offline CPUs.
  for (hwloc_obj_t node : nodes) {
    if (hwloc_bitmap_isset(node->complete_cpuset, static_cast<unsigned>(number))) {
      cpu.node = os_index_or_unknown(node);
      break;
    }
  }
  if (cpu.node < 0) {
    // The kernel links cpuN/nodeM for every registered CPU, online or not.
    const CpuSet linked = numbered_entries(own_dir, "node");
    if (!linked.empty()) cpu.node = linked.cpus().front();
  }
  return cpu;
}

// Packages, physical cores and threads per core of the online CPUs, as lscpu counts them.
void count_packages_and_cores(hwloc_topology_t hwloc, Topology& topology) {
  topology.packages = hwloc_get_nbobjs_by_type(hwloc, HWLOC_OBJ_PACKAGE);
  // Without package ids hwloc makes no Package; lscpu then still counts one socket.
  if (topology.packages == 0 && !topology.online.empty()) topology.packages = 1;
  topology.cores = hwloc_get_nbobjs_by_type(hwloc, HWLOC_OBJ_CORE);
  if (topology.cores == 0) {
    topology.cores = hwloc_get_nbobjs_by_type(hwloc, HWLOC_OBJ_PU);  // one thread per core
  }
  // The widest core, as lscpu does: a hybrid CPU with 2-thread P-cores says 2.
  topology.threads_per_core = topology.online.empty() ? 0 : 1;
  for (hwloc_obj_t core = nullptr;
       (core = hwloc_get_next_obj_by_type(hwloc, HWLOC_OBJ_CORE, core)) != nullptr;) {
    topology.threads_per_core =
        std::max(topology.threads_per_core, hwloc_bitmap_weight(core->cpuset));
  }
}

}  // namespace

Result<Topology> read_topology(const fs::path& root) {
  const fs::path cpu_dir = root / "sys/devices/system/cpu";
  std::error_code error;
  if (!fs::is_directory(cpu_dir, error)) {
    return make_error(ExitCode::bad_input,
                      "no CPU topology under '{}': {} is missing (--root must name a file-system "
                      "root holding sys/ and proc/; default /)",
                      root.string(), cpu_dir.string());
  }
  auto loaded = load_hwloc(root);
  if (!loaded) return loaded.error();
  hwloc_topology_t hwloc = loaded->get();

  auto possible_file = read_cpu_list(cpu_dir / "possible");
  auto present_file = read_cpu_list(cpu_dir / "present");
  auto online_file = read_cpu_list(cpu_dir / "online");
  auto isolated_file = read_cpu_list(cpu_dir / "isolated");
  for (const auto* list : {&possible_file, &present_file, &online_file, &isolated_file}) {
    if (!*list) return list->error();
  }

  Topology topology;
  // hwloc's complete cpuset holds offline CPUs too (from the per-CPU `online` files of old
  // kernels that lack the global ones); its topology cpuset holds only the CPUs it saw online.
  const CpuSet complete = to_cpuset(hwloc_topology_get_complete_cpuset(hwloc));
  const CpuSet seen_online = to_cpuset(hwloc_topology_get_topology_cpuset(hwloc));
  topology.present = present_file->value_or(numbered_entries(cpu_dir, "cpu") | complete);
  topology.possible = possible_file->value_or(topology.present);
  topology.online = online_file->value_or(seen_online);
  topology.isolated = isolated_file->value_or(CpuSet());

  std::vector<hwloc_obj_t> nodes;
  for (hwloc_obj_t node = nullptr;
       (node = hwloc_get_next_obj_by_type(hwloc, HWLOC_OBJ_NUMANODE, node)) != nullptr;) {
    nodes.push_back(node);
    topology.nodes.push_back({os_index_or_unknown(node), to_cpuset(node->cpuset)});
  }
  std::sort(topology.nodes.begin(), topology.nodes.end(),
            [](const NumaNode& a, const NumaNode& b) { return a.node < b.node; });

  for (const int number : (topology.present | topology.online).cpus()) {
    topology.cpus.push_back(describe_cpu(hwloc, nodes, cpu_dir, topology, number));
  }
  count_packages_and_cores(hwloc, topology);
  topology.caches = read_caches(hwloc);

  const std::string cpuinfo = read_text(root / "proc/cpuinfo").value_or("");
  topology.model_name = cpuinfo_field(cpuinfo, "model name").value_or("");
  if (topology.model_name.empty()) {
    // Not x86 (no "model name" line): hwloc's reading of the same file, e.g. "CPU part" on Arm.
    if (hwloc_obj_t package = hwloc_get_obj_by_type(hwloc, HWLOC_OBJ_PACKAGE, 0)) {
      if (const char* model = hwloc_obj_get_info_by_name(package, "CPUModel")) {
        topology.model_name = model;
      }
    }
  }
  topology.hypervisor_vendor = read_hypervisor_vendor(root, cpuinfo);
  return topology;
}

}  // namespace vcpumap
