// The sampler over fixture /proc trees rewritten between samples (the kept files see the new
// text, as a live /proc's do), and its delta logic on its own.
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collect/sampler.h"
#include "fixture_tree.h"
#include "sources/procfs/cpu_stat.h"
#include "views/json.h"
#include "views/top_view.h"

namespace vcpumap {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeThread;
using testing::FixtureTree;

const std::vector<std::string> kArgv = {"qemu-system-x86_64", "-name",
                                        "guest=web,debug-threads=on"};

// A VM with a main thread and two vCPUs: vCPU 0 on a kernel with every file, vCPU 1 on one
// without schedstat and sched.
struct Guest {
  FakeThread main{.tid = 100, .name = "qemu-system-x86", .cpu = 0};
  FakeThread vcpu0{.tid = 101,
                   .name = "CPU 0/KVM",
                   .cpu = 0,
                   .affinity = "0-1",
                   .cpu_time_ns = 1'000'000'000,
                   .run_delay_ns = 0,
                   .migrations = 5};
  FakeThread vcpu1{.tid = 102,
                   .name = "CPU 1/KVM",
                   .cpu = 1,
                   .affinity = "1",
                   .schedstat = false,
                   .sched = false};
  std::vector<FakeThread> threads() const { return {main, vcpu0, vcpu1}; }
};

std::string proc_stat(std::uint64_t busy0, std::uint64_t idle0, std::uint64_t busy1,
                      std::uint64_t idle1) {
  return fmt::format(
      "cpu  {} 0 0 {} 0 0 0 0 0 0\ncpu0 {} 0 0 {} 0 0 0 0 0 0\ncpu1 {} 0 0 {} 0 0 0 0 0 0\n"
      "intr 1 2 3\nctxt 99\n",
      busy0 + busy1, idle0 + idle1, busy0, idle0, busy1, idle1);
}

class SamplerTest : public ::testing::Test {
 protected:
  SamplerTest() {
    tree.add_process(100, kArgv, guest.threads());
    tree.write("proc/stat", proc_stat(0, 0, 0, 0));
    tree.write("proc/loadavg", "0.50 0.25 0.10 2/300 4000\n");
  }
  Sampler make_sampler(std::optional<std::size_t> kept_file_budget = std::nullopt) {
    SamplerOptions options;
    options.snapshot = options_for_root(tree.root());
    options.discovery_interval = seconds(5);
    options.kept_file_budget = kept_file_budget;
    return Sampler(std::move(options));
  }
  // Takes a sample `at` seconds after the start.
  const Sample& sample(Sampler& sampler, double at) {
    const auto offset = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(at));
    auto result = sampler.sample_at(start + offset, std::chrono::system_clock::now());
    EXPECT_TRUE(result) << (result ? "" : result.error().message);
    return **result;
  }
  const ThreadRates& rates_of(const Sample& sample, int tid) {
    for (std::size_t i = 0; i < sample.snapshot.vms.size(); ++i) {
      const auto& threads = sample.snapshot.vms[i].threads;
      for (std::size_t j = 0; j < threads.size(); ++j) {
        if (threads[j].tid == tid) return sample.rates[i][j];
      }
    }
    ADD_FAILURE() << "no thread " << tid;
    static const ThreadRates none;
    return none;
  }
  bool has_thread(const Sample& sample, int tid) {
    for (const auto& vm : sample.snapshot.vms) {
      for (const auto& thread : vm.threads) {
        if (thread.tid == tid) return true;
      }
    }
    return false;
  }

  FixtureTree tree;
  Guest guest;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

TEST_F(SamplerTest, FirstSampleHasPlacesButNoRates) {
  auto sampler = make_sampler();
  const auto& first = sample(sampler, 0);
  ASSERT_EQ(first.snapshot.vms.size(), 1U);
  EXPECT_EQ(first.sequence, 1U);
  EXPECT_EQ(first.interval_s, 0);
  const auto& rates = rates_of(first, 101);
  EXPECT_EQ(rates.cpu, 0);
  EXPECT_FALSE(rates.cpu_pct);
  EXPECT_FALSE(rates.delay_pct);
  EXPECT_FALSE(rates.cpu_changed);
  ASSERT_TRUE(first.load1);
  EXPECT_DOUBLE_EQ(*first.load1, 0.5);
}

TEST_F(SamplerTest, RatesOverOneInterval) {
  auto sampler = make_sampler();
  sample(sampler, 0);
  const long hz = ::sysconf(_SC_CLK_TCK);
  // Over 2 s: vCPU 0 ran 1 s, waited 0.5 s, moved 4 times to CPU 1; vCPU 1 ran hz ticks.
  guest.vcpu0.cpu_time_ns += 1'000'000'000;
  guest.vcpu0.run_delay_ns += 500'000'000;
  guest.vcpu0.migrations += 4;
  guest.vcpu0.cpu = 1;
  guest.vcpu1.utime += static_cast<std::uint64_t>(hz);
  guest.vcpu1.cpu = 0;
  tree.add_process(100, kArgv, guest.threads());
  tree.write("proc/stat", proc_stat(150, 50, 20, 180));
  const auto& second = sample(sampler, 2.0);

  EXPECT_DOUBLE_EQ(second.interval_s, 2.0);
  const auto& v0 = rates_of(second, 101);
  ASSERT_TRUE(v0.cpu_pct);
  EXPECT_NEAR(*v0.cpu_pct, 50.0, 1e-9);
  EXPECT_EQ(v0.cpu_source, RateSource::exact);
  ASSERT_TRUE(v0.delay_pct);
  EXPECT_NEAR(*v0.delay_pct, 25.0, 1e-9);
  ASSERT_TRUE(v0.migrations_per_s);
  EXPECT_NEAR(*v0.migrations_per_s, 2.0, 1e-9);
  EXPECT_EQ(v0.migrations_source, RateSource::exact);
  ASSERT_TRUE(v0.switches_per_s);
  EXPECT_NEAR(*v0.switches_per_s, 0.0, 1e-9);  // the fixture's switch counts stay put
  EXPECT_EQ(v0.cpu, 1);
  EXPECT_EQ(v0.previous_cpu, 0);
  EXPECT_TRUE(v0.cpu_changed);

  // Without schedstat and sched: %CPU from ticks and migrations from the CPU change, labelled.
  const auto& v1 = rates_of(second, 102);
  ASSERT_TRUE(v1.cpu_pct);
  EXPECT_NEAR(*v1.cpu_pct, 50.0, 1e-9);
  EXPECT_EQ(v1.cpu_source, RateSource::ticks);
  EXPECT_FALSE(v1.delay_pct);  // unavailable, not 0
  EXPECT_FALSE(v1.switches_per_s);
  ASSERT_TRUE(v1.migrations_per_s);
  EXPECT_NEAR(*v1.migrations_per_s, 0.5, 1e-9);
  EXPECT_EQ(v1.migrations_source, RateSource::observed);

  // Host CPUs from proc/stat; vCPUs placed where they were seen while running.
  ASSERT_EQ(second.cpus.size(), 2U);
  EXPECT_NEAR(*second.cpus[0].util_pct, 75.0, 1e-9);
  EXPECT_NEAR(*second.cpus[1].util_pct, 10.0, 1e-9);
  EXPECT_NEAR(*second.host_util_pct, 42.5, 1e-9);
  const std::vector<std::pair<int, int>> both = {{0, 0}, {0, 1}};
  auto on0 = second.cpus[0].vcpus, on1 = second.cpus[1].vcpus;
  std::sort(on0.begin(), on0.end());
  std::sort(on1.begin(), on1.end());
  EXPECT_EQ(on0, both);
  EXPECT_EQ(on1, both);
}

TEST_F(SamplerTest, ThreadAndVmExits) {
  auto sampler = make_sampler();
  sample(sampler, 0);
  std::filesystem::remove_all(tree.root() / "proc/100/task/102");
  const auto& second = sample(sampler, 1);
  ASSERT_EQ(second.snapshot.vms.size(), 1U);
  EXPECT_TRUE(has_thread(second, 101));
  EXPECT_FALSE(has_thread(second, 102));
  EXPECT_EQ(second.snapshot.vms[0].vcpus().size(), 1U);
  EXPECT_TRUE(second.vms_exited.empty());

  tree.remove_process(100);
  const auto& third = sample(sampler, 2);
  EXPECT_TRUE(third.snapshot.vms.empty());
  EXPECT_EQ(third.vms_exited, std::vector<int>{100});
  EXPECT_TRUE(third.rates.empty());
}

TEST_F(SamplerTest, ReusedTidRestartsCountersWithoutNegativeDeltas) {
  auto sampler = make_sampler();
  sample(sampler, 0);
  // Same tid, another thread: a later start time and counters far below the old ones.
  guest.vcpu0.start_time = 99999;
  guest.vcpu0.cpu_time_ns = 1000;
  guest.vcpu0.run_delay_ns = 0;
  guest.vcpu0.migrations = 0;
  tree.add_process(100, kArgv, guest.threads());
  const auto& second = sample(sampler, 1);
  const auto& restarted = rates_of(second, 101);
  EXPECT_FALSE(restarted.cpu_pct);
  EXPECT_FALSE(restarted.delay_pct);
  EXPECT_FALSE(restarted.migrations_per_s);
  EXPECT_FALSE(restarted.cpu_changed);

  guest.vcpu0.cpu_time_ns += 250'000'000;
  tree.add_process(100, kArgv, guest.threads());
  const auto& third = sample(sampler, 2);
  const auto& counted = rates_of(third, 101);
  ASSERT_TRUE(counted.cpu_pct);
  EXPECT_NEAR(*counted.cpu_pct, 25.0, 1e-9);
}

TEST_F(SamplerTest, NewThreadsAndVmsAreFound) {
  auto sampler = make_sampler();
  sample(sampler, 0);
  auto threads = guest.threads();
  threads.push_back({.tid = 103, .name = "CPU 2/KVM", .cpu = 1});
  tree.add_process(100, kArgv, threads);
  tree.add_process(200, {"qemu-system-x86_64", "-name", "guest=db,debug-threads=on"},
                   {{.tid = 200, .name = "qemu-system-x86"}, {.tid = 201, .name = "CPU 0/KVM"}});
  const auto& second = sample(sampler, 1);  // before the discovery interval: threads only
  ASSERT_EQ(second.snapshot.vms.size(), 1U);
  EXPECT_EQ(second.snapshot.vms[0].vcpus().size(), 3U);
  EXPECT_FALSE(rates_of(second, 103).cpu_pct);  // first seen: no rate yet

  const auto& third = sample(sampler, 6);  // discovery is due
  ASSERT_EQ(third.snapshot.vms.size(), 2U);
  EXPECT_EQ(third.vms_started, std::vector<int>{200});
  EXPECT_EQ(third.rates.size(), 2U);
  EXPECT_EQ(third.snapshot.vms[1].name, "db");
}

// How many of this process's descriptors are files whose path starts with `prefix`.
std::size_t open_files_under(const std::string& prefix) {
  std::size_t count = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
    const auto target = std::filesystem::read_symlink(entry.path(), error);
    if (!error && target.string().starts_with(prefix)) ++count;
  }
  return count;
}

// Discovery asks the source for new VMs only: the files kept for the VMs it knows stay open, or
// the next sample would open them all again.
TEST_F(SamplerTest, DiscoveryKeepsTheKnownVmsFilesOpen) {
  auto sampler = make_sampler();
  sample(sampler, 0);
  sample(sampler, 1);
  // The guest's files, not proc/stat, which the host view keeps open.
  const auto guest_dir = std::filesystem::canonical(tree.root() / "proc/100").string() + "/";
  const auto kept = open_files_under(guest_dir);
  ASSERT_GT(kept, 0U);
  sample(sampler, 6);  // discovery is due and finds no new VM
  EXPECT_EQ(open_files_under(guest_dir), kept);
  tree.remove_process(100);
  sample(sampler, 7);
  sample(sampler, 12);  // discovery again: the VM that exited gave its files back
  EXPECT_EQ(open_files_under(guest_dir), 0U);
}

// A host with more VM threads than open files: past the budget, files are opened per sample.
TEST_F(SamplerTest, ThreadsBeyondTheFileBudgetAreStillSampled) {
  auto sampler = make_sampler(1);  // vCPU 0 keeps its stat; every other file is reopened
  const auto& first = sample(sampler, 0);
  ASSERT_EQ(first.snapshot.vms.size(), 1U);
  EXPECT_EQ(first.snapshot.vms[0].threads.size(), 3U);
  const auto& notes = first.snapshot.notes;
  EXPECT_EQ(std::count_if(notes.begin(), notes.end(),
                          [](const std::string& note) {
                            return note.find("open-file limit") != std::string::npos;
                          }),
            1);

  guest.vcpu0.cpu_time_ns += 500'000'000;
  guest.vcpu0.run_delay_ns += 100'000'000;
  guest.vcpu0.migrations += 2;
  guest.vcpu0.cpu = 1;
  guest.vcpu1.cpu = 0;
  tree.add_process(100, kArgv, guest.threads());
  const auto& second = sample(sampler, 1.0);
  ASSERT_EQ(second.snapshot.vms.size(), 1U);
  EXPECT_EQ(second.snapshot.vms[0].threads.size(), 3U);
  const auto& v0 = rates_of(second, 101);
  ASSERT_TRUE(v0.cpu_pct);
  EXPECT_NEAR(*v0.cpu_pct, 50.0, 1e-9);
  ASSERT_TRUE(v0.delay_pct);
  EXPECT_NEAR(*v0.delay_pct, 10.0, 1e-9);
  ASSERT_TRUE(v0.migrations_per_s);
  EXPECT_NEAR(*v0.migrations_per_s, 2.0, 1e-9);
  EXPECT_EQ(v0.cpu, 1);
  EXPECT_EQ(rates_of(second, 102).cpu, 0);

  std::filesystem::remove_all(tree.root() / "proc/100/task/102");  // a reopened thread exits
  const auto& third = sample(sampler, 2.0);
  ASSERT_EQ(third.snapshot.vms.size(), 1U);
  EXPECT_FALSE(has_thread(third, 102));
  EXPECT_TRUE(has_thread(third, 101));
}

TEST(SamplerRates, PureDeltas) {
  ThreadFacts before, after;
  before.cpu_time_ns = 100;
  after.cpu_time_ns = 50;  // went back: unknown, never negative
  before.last_cpu = 3;
  after.last_cpu = 3;
  const auto rates = thread_rates(&before, after, 1'000'000'000, 100);
  EXPECT_FALSE(rates.cpu_pct);
  EXPECT_FALSE(rates.cpu_changed);
  const auto first = thread_rates(nullptr, after, 0, 100);
  EXPECT_EQ(first.cpu, 3);
  EXPECT_EQ(first.previous_cpu, -1);
  EXPECT_EQ(cpu_util_pct(0, 0, 0, 0), std::nullopt);
  EXPECT_EQ(cpu_util_pct(10, 100, 60, 200), 50.0);
}

TEST(CpuStat, ParsesPerCpuLinesAndLoad) {
  const auto cpus = procfs::parse_proc_stat_cpus(
      "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
      "cpu3 10 0 5 100 1 0 0 2\nintr 5\n");
  ASSERT_TRUE(cpus);
  ASSERT_EQ(cpus->size(), 2U);
  EXPECT_EQ((*cpus)[1].cpu, 3);
  EXPECT_EQ((*cpus)[1].busy(), 15U);
  EXPECT_EQ((*cpus)[1].total(), 118U);
  EXPECT_FALSE(procfs::parse_proc_stat_cpus("cpu0 1 x 3 4\n"));
  EXPECT_FALSE(procfs::parse_proc_stat_cpus("cpu0 1 2\n"));
  const auto load = procfs::parse_loadavg("1.50 0.25 0.00 3/400 1234\n");
  ASSERT_TRUE(load);
  EXPECT_DOUBLE_EQ(load->one, 1.5);
  EXPECT_FALSE(procfs::parse_loadavg("x"));
  // Found by fuzzing: from_chars reads these, but no kernel writes them.
  EXPECT_FALSE(procfs::parse_loadavg("-.26 04 37\n"));
  EXPECT_FALSE(procfs::parse_loadavg("nan 0.1 0.1 1/1 1\n"));
  EXPECT_FALSE(procfs::parse_loadavg("0.1 inf 0.1 1/1 1\n"));
}

TEST_F(SamplerTest, TopViewsShowEveryVcpu) {
  auto sampler = make_sampler();
  sample(sampler, 0);
  guest.vcpu0.cpu_time_ns += 500'000'000;
  guest.vcpu0.cpu = 1;
  tree.add_process(100, kArgv, guest.threads());
  const auto& second = sample(sampler, 1);
  const auto text = views::render_top_batch(second, {}, nullptr);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\nweb +0 +101 +1\* +50\.0 +[0-9.]+ +n/a )")))
      << text;  // without the delay split, WAITED BEHIND says n/a
  EXPECT_NE(text.find("cpu1"), std::string::npos) << text;
  const auto json = nlohmann::json::parse(views::dump_json(views::top_json(second, nullptr)));
  const auto& vcpu = json["vms"][0]["vcpus"][0];
  EXPECT_EQ(vcpu["vcpu"], 0);
  EXPECT_EQ(vcpu["tid"], 101);
  EXPECT_EQ(vcpu["cpu"], 1);
  EXPECT_DOUBLE_EQ(vcpu["cpu_pct"].get<double>(), 50.0);
  EXPECT_TRUE(vcpu["delay_pct"].is_number());
  EXPECT_TRUE(vcpu.contains("migrations_per_s"));
  EXPECT_EQ(json["vms"][0]["name"], "web");
  EXPECT_TRUE(vcpu["waited_behind"].is_null());

  views::TopSettings by_cpu;
  by_cpu.sort = views::TopSort::cpu_pct;
  by_cpu.show_emulator = true;
  const auto rows = views::top_rows(second, by_cpu);
  ASSERT_EQ(rows.size(), 3U);
  EXPECT_EQ(second.snapshot.vms[0].threads[rows[0].thread].tid, 101);
  // The figures fit in 80 columns; AFFINITY and FLAGS go on past them.
  EXPECT_LE(views::top_table_header().find("MIGR/S") + 6, 80U);
  for (const auto& row : rows) EXPECT_LE(views::top_row_text(second, row, nullptr).size(), 100U);
}

TEST(TopView, ManyCpusFitCompactIn80Columns) {
  Sample sample;
  for (int cpu = 0; cpu < 256; ++cpu) {
    sample.cpus.push_back({cpu, cpu % 3 == 0 ? 100.0 : 2.0, {}});
    Cpu topology_cpu;
    topology_cpu.cpu = cpu;
    topology_cpu.package = cpu / 128;
    topology_cpu.siblings.add(cpu % 128 < 64 ? cpu : cpu - 64);
    topology_cpu.siblings.add(cpu % 128 < 64 ? cpu + 64 : cpu);
    sample.snapshot.topology.cpus.push_back(topology_cpu);
  }
  EXPECT_FALSE(views::cpu_cells_fit(sample, 80, 7));
  const auto lines = views::cpu_cell_lines(sample, 80, true);
  EXPECT_LE(lines.size(), 16U);
  for (const auto& line : lines) EXPECT_LE(line.size(), 80U) << line;
  const auto two = views::cpu_cell_lines(sample, 80, false);
  for (const auto& line : two) EXPECT_LE(line.size(), 80U) << line;
}

}  // namespace
}  // namespace vcpumap
