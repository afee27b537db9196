// The topology as lscpu and hwloc would give it: on the real machines captured in
// ../shared/fixtures/topology (expected values from its README and from reading the trees here,
// independently of read_topology), on this project's 2-CPU fixture, and on this machine.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collect/delay.h"
#include "fixture_tree.h"
#include "sources/sysfs/topology.h"
#include "util/text.h"
#include "views/topology_view.h"

namespace vcpumap {
namespace {

namespace fs = std::filesystem;

const fs::path kSharedTopology = fs::path(VCPUMAP_SHARED_FIXTURES) / "topology";
const fs::path kTwoCpuVm = fs::path(VCPUMAP_FIXTURES) / "topology-2cpu-vm";

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

CpuSet list_file(const fs::path& path) {
  return CpuSet::parse_list(slurp(path)).value();
}
CpuSet mask_file(const fs::path& path) {
  return CpuSet::parse_mask(slurp(path)).value();
}

std::set<int> cpu_numbers(const std::vector<Cpu>& cpus) {
  std::set<int> numbers;
  for (const auto& cpu : cpus) numbers.insert(cpu.cpu);
  return numbers;
}

// What lscpu would count, read straight from a tree's files: cpuN folders, per-CPU and global
// online files, topology ids of online CPUs, node cpumaps, distinct cache instances.
struct TreeFacts {
  CpuSet present;
  CpuSet online;
  std::map<std::pair<int, int>, int> threads_of_core;  // (package, core_id) -> online threads
  std::set<int> packages;
  std::map<int, CpuSet> node_cpus;                                   // online CPUs of each node
  std::map<std::pair<int, std::string>, std::uint64_t> cache_bytes;  // (level, type) -> total
};

TreeFacts read_tree(const fs::path& root) {
  TreeFacts facts;
  const fs::path cpu_dir = root / "sys/devices/system/cpu";
  for (const auto& entry : fs::directory_iterator(cpu_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 3 && name.starts_with("cpu") && std::isdigit(name[3])) {
      facts.present.add(std::stoi(name.substr(3)));
    }
  }
  if (fs::exists(cpu_dir / "online")) {
    facts.online = list_file(cpu_dir / "online");
  } else {
    for (int cpu : facts.present.cpus()) {
      const auto flag = cpu_dir / ("cpu" + std::to_string(cpu)) / "online";
      if (!fs::exists(flag) || trim(slurp(flag)) == "1") facts.online.add(cpu);
    }
  }
  std::set<std::tuple<int, std::string, std::string>> cache_instances;
  for (int cpu : facts.online.cpus()) {
    const fs::path dir = cpu_dir / ("cpu" + std::to_string(cpu));
    const int package = std::stoi(slurp(dir / "topology/physical_package_id"));
    ++facts.threads_of_core[{package, std::stoi(slurp(dir / "topology/core_id"))}];
    facts.packages.insert(package);
    if (!fs::exists(dir / "cache")) continue;
    for (const auto& index : fs::directory_iterator(dir / "cache")) {
      const int level = std::stoi(slurp(index.path() / "level"));
      const std::string type(trim(slurp(index.path() / "type")));
      const std::string shared = mask_file(index.path() / "shared_cpu_map").to_list();
      if (cache_instances.insert({level, type, shared}).second) {
        // sysfs writes sizes as "32K".
        facts.cache_bytes[{level, type}] += std::stoull(slurp(index.path() / "size")) * 1024;
      }
    }
  }
  for (const auto& entry : fs::directory_iterator(root / "sys/devices/system/node")) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("node") && fs::exists(entry.path() / "cpumap")) {
      facts.node_cpus[std::stoi(name.substr(4))] =
          mask_file(entry.path() / "cpumap") & facts.online;
    }
  }
  return facts;
}

// Where to unpack: an archive holds up to ~4,500 small files, which take ~10 s to create on a
// slow disk and 0.2 s in RAM, so tmpfs /dev/shm unless TMPDIR says otherwise.
fs::path unpack_base() {
  std::error_code error;
  if (std::getenv("TMPDIR") == nullptr && fs::is_directory("/dev/shm", error) &&
      ::access("/dev/shm", W_OK) == 0) {
    return "/dev/shm";
  }
  return fs::temp_directory_path();
}

// Unpacks one archive of ../shared/fixtures/topology into a temporary folder, removed after.
class SharedMachine {
 public:
  explicit SharedMachine(const std::string& archive) {
    std::string pattern = (unpack_base() / "vcpumap-topo-XXXXXX").string();
    temp_ = ::mkdtemp(pattern.data());
    const std::string command =
        "tar xjf '" + (kSharedTopology / archive).string() + "' -C '" + temp_.string() + "'";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    // One archive unpacks to a folder named unlike the archive: take the one folder there.
    for (const auto& entry : fs::directory_iterator(temp_)) root_ = entry.path();
  }
  ~SharedMachine() { fs::remove_all(temp_); }
  SharedMachine(const SharedMachine&) = delete;
  SharedMachine& operator=(const SharedMachine&) = delete;

  const fs::path& root() const { return root_; }

 private:
  fs::path temp_;
  fs::path root_;
};

class SharedTopology : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!fs::is_directory(kSharedTopology)) {
      GTEST_SKIP() << kSharedTopology.string()
                   << " is absent: the real machines' topology tests need ../shared";
    }
  }
  // read_topology of an unpacked archive, and the tree's own facts.
  std::pair<Topology, TreeFacts> load(const std::string& archive) {
    machine_ = std::make_unique<SharedMachine>(archive);
    auto topology = read_topology(machine_->root());
    EXPECT_TRUE(topology.ok()) << (topology.ok() ? "" : topology.error().message);
    return {topology.ok() ? *topology : Topology{}, read_tree(machine_->root())};
  }
  const fs::path& root() const { return machine_->root(); }

 private:
  std::unique_ptr<SharedMachine> machine_;
};

// Every machine: what read_topology says is what the tree's files say, as lscpu counts it.
TEST_P(SharedTopology, MatchesTheTreesOwnFiles) {
  const auto [topology, tree] = load(GetParam());
  EXPECT_EQ(topology.present, tree.present);
  EXPECT_EQ(topology.online, tree.online);
  const auto present = tree.present.cpus();
  EXPECT_EQ(cpu_numbers(topology.cpus), std::set<int>(present.begin(), present.end()));
  EXPECT_EQ(topology.packages, static_cast<int>(tree.packages.size()));
  EXPECT_EQ(topology.cores, static_cast<int>(tree.threads_of_core.size()));
  int widest = 0;
  for (const auto& [core, threads] : tree.threads_of_core) widest = std::max(widest, threads);
  EXPECT_EQ(topology.threads_per_core, widest);
  ASSERT_EQ(topology.nodes.size(), tree.node_cpus.size());
  for (const auto& node : topology.nodes) EXPECT_EQ(node.cpus, tree.node_cpus.at(node.node));
  std::map<std::pair<int, std::string>, std::uint64_t> cache_bytes;
  for (const auto& cache : topology.caches) {
    cache_bytes[{cache.level, cache.type}] += cache.size_bytes * cache.instances;
  }
  EXPECT_EQ(cache_bytes, tree.cache_bytes);
  for (const auto& cpu : topology.cpus) {
    if (!cpu.online) continue;
    const fs::path dir = root() / "sys/devices/system/cpu" / ("cpu" + std::to_string(cpu.cpu));
    EXPECT_EQ(cpu.core, std::stoi(slurp(dir / "topology/core_id"))) << "cpu" << cpu.cpu;
    EXPECT_EQ(cpu.package, std::stoi(slurp(dir / "topology/physical_package_id")));
    EXPECT_EQ(cpu.siblings, mask_file(dir / "topology/thread_siblings") & tree.online);
    EXPECT_TRUE(tree.node_cpus.at(cpu.node).contains(cpu.cpu)) << "cpu" << cpu.cpu;
  }
  // These captures are all bare metal: no hypervisor flag in their cpuinfo.
  EXPECT_EQ(topology.hypervisor_vendor, "");
  EXPECT_FALSE(topology.model_name.empty());
  EXPECT_NE(topology.model_name.front(), ' ');
}

INSTANTIATE_TEST_SUITE_P(Machines, SharedTopology,
                         ::testing::Values("16em64t-4s2c2t.tar.bz2",
                                           "16em64t-4s2c2t-offlines.tar.bz2",
                                           "32intel64-2p8co2t+8ve.tar.bz2",
                                           "96em64t-4no4pa3ca2co.tar.bz2",
                                           "20em64t-hybrid-1p6c2t+2ca4co1t.tar.bz2"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           // Test names allow only letters, digits and '_'.
                           std::string name = info.param.substr(0, info.param.find('.'));
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

using SharedMachineTopology = SharedTopology;

TEST_F(SharedMachineTopology, FourSocketsWithoutOnlineFile) {
  const auto [topology, tree] = load("16em64t-4s2c2t.tar.bz2");
  ASSERT_FALSE(fs::exists(root() / "sys/devices/system/cpu/online"));
  EXPECT_EQ(topology.present.count(), 16);
  EXPECT_EQ(topology.online.to_list(), "0-15");
  EXPECT_EQ(topology.packages, 4);
  EXPECT_EQ(topology.cores, 8);
  EXPECT_EQ(topology.threads_per_core, 2);
  ASSERT_EQ(topology.nodes.size(), 1u);
  EXPECT_EQ(topology.nodes[0].cpus.to_list(), "0-15");
  EXPECT_EQ(topology.find(0)->siblings.to_list(), "0,8");
  EXPECT_EQ(topology.model_name, "Intel(R) Xeon(TM) CPU 2.60GHz");
}

TEST_F(SharedMachineTopology, OfflineCpusInTheMiddle) {
  const auto [topology, tree] = load("16em64t-4s2c2t-offlines.tar.bz2");
  EXPECT_EQ(topology.present.count(), 16);
  EXPECT_EQ(topology.online.count(), 12);
  EXPECT_EQ((topology.present - topology.online).to_list(), "2,5,13-14");
  const Cpu* offline = topology.find(2);
  ASSERT_NE(offline, nullptr);
  EXPECT_FALSE(offline->online);
  EXPECT_TRUE(offline->siblings.empty());
  EXPECT_EQ(offline->core, -1);                            // the kernel removed its topology files
  EXPECT_EQ(topology.find(10)->siblings.to_list(), "10");  // its sibling 2 is offline
  EXPECT_EQ(topology.packages, 4);
  EXPECT_EQ(topology.cores, 7);  // core (1,1) lost both threads
  EXPECT_EQ(topology.threads_per_core, 2);
  const auto text = views::render_topology_text(topology, {});
  EXPECT_NE(text.find("Off-line CPU(s) list: 2,5,13-14\n"), std::string::npos) << text;
  const auto json = views::topology_json(topology, {});
  EXPECT_EQ(json["cpus"][2]["online"], false);
  EXPECT_EQ(json["offline"], nlohmann::json({2, 5, 13, 14}));
}

TEST_F(SharedMachineTopology, TwoSocketNumaHostWithHotplugSlots) {
  const auto [topology, tree] = load("32intel64-2p8co2t+8ve.tar.bz2");
  EXPECT_EQ(topology.possible.to_list(), "0-111");
  EXPECT_EQ(topology.present.to_list(), "0-31");
  EXPECT_EQ(topology.cpus.size(), 32u);  // not one row per empty hot-plug slot
  EXPECT_EQ(topology.packages, 2);
  EXPECT_EQ(topology.cores, 16);
  EXPECT_EQ(topology.threads_per_core, 2);
  ASSERT_EQ(topology.nodes.size(), 2u);
  EXPECT_EQ(topology.nodes[0].cpus.to_list(), "0-7,16-23");
  EXPECT_EQ(topology.nodes[1].cpus.to_list(), "8-15,24-31");
  EXPECT_EQ(topology.find(24)->node, 1);
  const auto text = views::render_topology_text(topology, {});
  EXPECT_EQ(text.find("Off-line"), std::string::npos);
  EXPECT_NE(text.find("L3 cache:            22 MiB (2 instances)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Core(s) per socket:  8\n"), std::string::npos);
}

TEST_F(SharedMachineTopology, InterleavedNumberingWithoutOnlineFile) {
  const auto [topology, tree] = load("96em64t-4no4pa3ca2co.tar.bz2");
  ASSERT_FALSE(fs::exists(root() / "sys/devices/system/cpu/online"));
  EXPECT_EQ(topology.online.count(), 96);
  EXPECT_EQ(topology.packages, 16);
  EXPECT_EQ(topology.cores, 96);
  EXPECT_EQ(topology.threads_per_core, 1);
  ASSERT_EQ(topology.nodes.size(), 4u);
  EXPECT_EQ(topology.nodes[3].cpus.to_list(), "72-95");
  EXPECT_EQ(topology.find(0)->package, 1);  // cpu0 and cpu1 sit on different packages
  EXPECT_EQ(topology.find(1)->package, 0);
  EXPECT_EQ(topology.find(50)->node, 2);
}

TEST_F(SharedMachineTopology, HybridPerformanceAndEfficiencyCores) {
  const auto [topology, tree] = load("20em64t-hybrid-1p6c2t+2ca4co1t.tar.bz2");
  EXPECT_EQ(topology.online.count(), 20);
  EXPECT_EQ(topology.packages, 1);
  EXPECT_EQ(topology.cores, 14);
  EXPECT_EQ(topology.threads_per_core, 2);  // lscpu: the widest core
  std::map<std::string, int> width_of_core;
  for (const auto& cpu : topology.cpus)
    width_of_core[cpu.siblings.to_list()] = cpu.siblings.count();
  std::map<int, int> cores_by_width;
  for (const auto& [siblings, width] : width_of_core) ++cores_by_width[width];
  EXPECT_EQ(cores_by_width, (std::map<int, int>{{1, 8}, {2, 6}}));
  EXPECT_EQ(topology.find(12)->core, 24);  // the kernel's sparse core_id, not a logical index
  EXPECT_EQ(topology.model_name, "13th Gen Intel(R) Core(TM) i7-1370P");
  const auto text = views::render_topology_text(topology, {});
  EXPECT_NE(text.find("L2 cache:            11.5 MiB (8 instances)\n"), std::string::npos) << text;
}

// ran_beside's sibling map (collect/delay.h), from the same trees: the other CPUs of each core.
TEST_F(SharedMachineTopology, SmtSiblingsForRanBeside) {
  ASSERT_EQ(std::getenv("VCPUMAP_DELAY_SIBLINGS"), nullptr);
  {
    const auto [topology, tree] = load("16em64t-4s2c2t.tar.bz2");
    const auto siblings = smt_siblings(topology).value();
    ASSERT_EQ(siblings.size(), 16u);
    EXPECT_EQ(siblings[0], std::vector<int>{8});
    EXPECT_EQ(siblings[8], std::vector<int>{0});
    EXPECT_EQ(ran_beside_unmeasured(siblings), "");
  }
  {
    const auto [topology, tree] = load("16em64t-4s2c2t-offlines.tar.bz2");
    const auto siblings = smt_siblings(topology).value();
    EXPECT_TRUE(siblings.size() <= 10 || siblings[10].empty());  // its sibling 2 is offline
    EXPECT_TRUE(siblings.size() <= 2 || siblings[2].empty());
    EXPECT_EQ(ran_beside_unmeasured(siblings), "");
  }
  {
    const auto [topology, tree] = load("20em64t-hybrid-1p6c2t+2ca4co1t.tar.bz2");
    const auto siblings = smt_siblings(topology).value();
    int paired = 0;
    for (const auto& others : siblings) paired += others.size() == 1 ? 1 : 0;
    EXPECT_EQ(paired, 12);  // the six two-thread cores; the eight others have no sibling
  }
  {
    const auto [topology, tree] = load("96em64t-4no4pa3ca2co.tar.bz2");
    const auto siblings = smt_siblings(topology).value();
    EXPECT_NE(ran_beside_unmeasured(siblings).find("no SMT"), std::string::npos);
  }
}

TEST(Topology, TwoCpuKvmGuestFixture) {
  auto topology = read_topology(kTwoCpuVm);
  ASSERT_TRUE(topology.ok()) << topology.error().message;
  EXPECT_EQ(topology->present.to_list(), "0-1");
  EXPECT_EQ(topology->packages, 1);
  EXPECT_EQ(topology->cores, 2);
  EXPECT_EQ(topology->threads_per_core, 1);
  EXPECT_EQ(topology->hypervisor_vendor, "KVM");
  EXPECT_EQ(topology->model_name, "AMD EPYC");
  EXPECT_EQ(topology->find(1)->siblings.to_list(), "1");
}

TEST(Topology, RootWithoutCpusIsAnErrorNamingIt) {
  testing::FixtureTree tree;
  fs::remove_all(tree.root() / "sys");
  auto topology = read_topology(tree.root());
  ASSERT_FALSE(topology.ok());
  EXPECT_NE(topology.error().message.find(tree.root().string()), std::string::npos);
  EXPECT_EQ(topology.error().exit_code, ExitCode::bad_input);
}

TEST(Topology, MissingOnlineFileAndIsolatedCpus) {
  testing::FixtureTree tree;
  fs::remove(tree.root() / "sys/devices/system/cpu/online");
  tree.write("sys/devices/system/cpu/isolated", "1\n");
  auto topology = read_topology(tree.root());
  ASSERT_TRUE(topology.ok()) << topology.error().message;
  EXPECT_EQ(topology->online.to_list(), "0-1");  // what hwloc saw
  EXPECT_EQ(topology->isolated.to_list(), "1");
  EXPECT_TRUE(topology->find(1)->isolated);
  const auto text = views::render_topology_text(*topology, {});
  EXPECT_NE(text.find("Isolated CPU(s) list: 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ISOLATED"), std::string::npos);
}

TEST(Topology, HypervisorVendorFromFiles) {
  const auto vendor = [](const std::function<void(testing::FixtureTree&)>& change) {
    testing::FixtureTree tree;
    change(tree);
    return read_topology(tree.root()).value().hypervisor_vendor;
  };
  const std::string clocksource =
      "sys/devices/system/clocksource/clocksource0/available_clocksource";
  EXPECT_EQ(vendor([](auto&) {}), "KVM");  // kvm-clock, as on this machine
  EXPECT_EQ(vendor([&](auto& t) {
              fs::remove(t.root() / clocksource);
              t.write("sys/class/dmi/id/sys_vendor", "Microsoft Corporation\n");
            }),
            "Microsoft");
  EXPECT_EQ(vendor([&](auto& t) { t.write("sys/hypervisor/type", "xen\n"); }), "Xen");
  EXPECT_EQ(vendor([&](auto& t) {
              fs::remove(t.root() / clocksource);
              t.write("sys/class/dmi/id/sys_vendor", "QEMU\n");
            }),
            "KVM");
  EXPECT_EQ(vendor([&](auto& t) { fs::remove(t.root() / clocksource); }), "unknown");
  // No "hypervisor" CPU flag: bare metal, whatever else the tree holds.
  EXPECT_EQ(vendor([](auto& t) {
              auto cpuinfo = slurp(t.root() / "proc/cpuinfo");
              for (auto at = cpuinfo.find(" hypervisor"); at != std::string::npos;
                   at = cpuinfo.find(" hypervisor")) {
                cpuinfo.erase(at, 11);
              }
              t.write("proc/cpuinfo", cpuinfo);
            }),
            "");
}

TEST(Topology, PutsHwlocFsrootBackAsItWas) {
  ::setenv("HWLOC_FSROOT", "/somewhere-else", 1);
  ASSERT_TRUE(read_topology(kTwoCpuVm).ok());
  EXPECT_STREQ(std::getenv("HWLOC_FSROOT"), "/somewhere-else");
  ::unsetenv("HWLOC_FSROOT");
  ASSERT_TRUE(read_topology(kTwoCpuVm).ok());
  EXPECT_EQ(std::getenv("HWLOC_FSROOT"), nullptr);
}

Vm vm_with_vcpus(int pid, const std::string& name,
                 const std::vector<std::pair<int, std::string>>& last_cpu_and_affinity) {
  Vm vm;
  vm.pid = pid;
  vm.name = name;
  for (std::size_t i = 0; i < last_cpu_and_affinity.size(); ++i) {
    VmThread thread;
    thread.tid = pid + 1 + static_cast<int>(i);
    thread.role = ThreadRole::vcpu;
    thread.vcpu = static_cast<int>(i);
    thread.facts.last_cpu = last_cpu_and_affinity[i].first;
    thread.facts.affinity = CpuSet::parse_list(last_cpu_and_affinity[i].second).value();
    vm.threads.push_back(thread);
  }
  return vm;
}

TEST(TopologyView, VcpusWhereTheyRanAndWhereTheyArePinned) {
  const Topology topology = read_topology(kTwoCpuVm).value();
  // The note's guest: vCPU 0 pinned to CPU 1; a second, unnamed VM that ran on CPU 1.
  const std::vector<Vm> vms = {vm_with_vcpus(100, "demo", {{1, "1"}, {0, "0-1"}}),
                               vm_with_vcpus(200, "", {{1, "0-1"}})};
  const auto text = views::render_topology_text(topology, vms);
  EXPECT_NE(text.find("\n0    0     0       0     yes     0         demo:vcpu1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n1    0     0       1     yes     1         demo:vcpu0* 200:vcpu0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("* pinned to this CPU alone"), std::string::npos);
  EXPECT_NE(text.find("Hypervisor vendor:   KVM\n"), std::string::npos);

  const auto json = views::topology_json(topology, vms);
  for (const char* key :
       {"cpus", "packages", "cores", "threads_per_core", "numa_nodes", "hypervisor_vendor"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json["cpus"][1]["siblings"], nlohmann::json({1}));
  EXPECT_EQ(json["cpus"][1]["vcpus"][0]["vm"], "demo");
  EXPECT_EQ(json["cpus"][1]["vcpus"][0]["pinned_here"], true);
  EXPECT_EQ(json["cpus"][1]["vcpus"][1]["vm"], nullptr);
  EXPECT_EQ(json["numa_nodes"], 1);

  Topology bare = topology;
  bare.hypervisor_vendor.clear();
  EXPECT_EQ(views::topology_json(bare, {})["hypervisor_vendor"], nullptr);
  EXPECT_EQ(views::render_topology_text(bare, {}).find("Hypervisor"), std::string::npos);
}

TEST(TopologyView, SizesAsLscpuPrintsThem) {
  EXPECT_EQ(views::human_size(65536), "64 KiB");
  EXPECT_EQ(views::human_size(1 << 20), "1 MiB");
  EXPECT_EQ(views::human_size(23 * (1 << 19)), "11.5 MiB");
  EXPECT_EQ(views::human_size(1023), "1023 B");
  EXPECT_EQ(views::human_size((2 << 20) - 40000), "2 MiB");  // 1.96 rounds up
}

// This machine, against lscpu's own answers.
TEST(Topology, ThisMachineAgreesWithLscpu) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen("lscpu -J 2>/dev/null", "r"), ::pclose);
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe.get())) output += buffer;
  if (output.empty()) GTEST_SKIP() << "lscpu is not installed";
  // lscpu -J nests some fields under "children": walk them all.
  std::map<std::string, std::string> field;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& items) {
    for (const auto& item : items) {
      if (item.contains("data") && item["data"].is_string()) {
        field[item["field"].get<std::string>()] = item["data"].get<std::string>();
      }
      if (item.contains("children")) walk(item["children"]);
    }
  };
  walk(nlohmann::json::parse(output)["lscpu"]);

  auto topology = read_topology("/");
  ASSERT_TRUE(topology.ok()) << topology.error().message;
  EXPECT_EQ(std::to_string(topology->present.count()), field["CPU(s):"]);
  EXPECT_EQ(topology->online, CpuSet::parse_list(field["On-line CPU(s) list:"]).value());
  EXPECT_EQ(std::to_string(topology->threads_per_core), field["Thread(s) per core:"]);
  EXPECT_EQ(std::to_string(topology->cores / topology->packages), field["Core(s) per socket:"]);
  EXPECT_EQ(std::to_string(topology->packages), field["Socket(s):"]);
  EXPECT_EQ(std::to_string(topology->nodes.size()), field["NUMA node(s):"]);
  EXPECT_EQ(topology->hypervisor_vendor, field["Hypervisor vendor:"]);
  EXPECT_EQ(topology->model_name, field["Model name:"]);
  for (const auto& node : topology->nodes) {
    const auto key = "NUMA node" + std::to_string(node.node) + " CPU(s):";
    EXPECT_EQ(node.cpus, CpuSet::parse_list(field[key]).value()) << key;
  }
  // lscpu's summary cache lines read the same as ours.
  const auto text = views::render_topology_text(*topology, {});
  for (const char* cache : {"L1d cache:", "L1i cache:", "L2 cache:", "L3 cache:"}) {
    if (field.contains(cache)) {
      EXPECT_NE(text.find(fmt::format("{} ", cache)), std::string::npos) << cache;
      EXPECT_NE(text.find(" " + field[cache] + "\n"), std::string::npos) << field[cache];
    }
  }
}

}  // namespace
}  // namespace vcpumap
