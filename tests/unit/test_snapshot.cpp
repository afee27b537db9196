// take_snapshot and find_vm over fixture /proc trees: what `vcpumap list` would show.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collect/snapshot.h"
#include "fixture_tree.h"
#include "views/json.h"
#include "views/text_view.h"

namespace vcpumap {
namespace {

using testing::FakeThread;
using testing::FixtureTree;

const std::vector<std::string> kQemuArgv = {"/usr/bin/qemu-system-x86_64", "-name",
                                            "guest=web (1)),debug-threads=on", "-uuid",
                                            "6f1c2a9e-0b7d-4c1e-9a55-2f0e8d3b7c41"};

std::vector<FakeThread> qemu_threads() {
  std::vector<FakeThread> threads;
  threads.push_back({.tid = 100, .name = "qemu-system-x86", .cpu = 0, .affinity = "0"});
  threads.push_back({.tid = 101,
                     .name = "CPU 0/KVM",
                     .state = 'R',
                     .utime = 30000,
                     .stime = 2794,
                     .cpu = 1,
                     .affinity = "1",
                     .cpu_time_ns = 327940000000ULL,
                     .run_delay_ns = 1500000000ULL,
                     .migrations = 0});
  threads.push_back(
      {.tid = 102, .name = "CPU 1/KVM", .cpu = 0, .affinity = "0-1", .migrations = 17});
  threads.push_back({.tid = 103, .name = "IO iothread1", .cpu = 0});
  threads.push_back({.tid = 104, .name = "IO mon_iothread", .cpu = 0, .affinity = "0"});
  threads.push_back({.tid = 105, .name = "a) R 1 (b", .cpu = 1});
  threads.push_back({.tid = 106, .name = "CPU 2/KVM\n", .cpu = 1});
  threads.push_back({.tid = 107, .name = std::string("\xff\xfe name"), .cpu = 1});
  return threads;
}

TEST(Snapshot, FindsQemuVcpusByThreadName) {
  FixtureTree tree;
  tree.add_process(100, kQemuArgv, qemu_threads());
  tree.add_process(300, {"bash"}, {{.tid = 300, .name = "bash"}});
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  ASSERT_EQ(snapshot->vms.size(), 1U);
  const auto& vm = snapshot->vms[0];
  EXPECT_EQ(vm.name, "web (1))");
  EXPECT_EQ(vm.uuid, "6f1c2a9e-0b7d-4c1e-9a55-2f0e8d3b7c41");
  EXPECT_EQ(vm.vcpu_source, VcpuSource::thread_names);
  const auto vcpus = vm.vcpus();
  ASSERT_EQ(vcpus.size(), 2U);  // "CPU 2/KVM\n" is not a vCPU
  EXPECT_EQ(vcpus[0]->tid, 101);
  EXPECT_EQ(vcpus[0]->facts.last_cpu, 1);
  EXPECT_EQ(vcpus[0]->facts.affinity.to_list(), "1");
  EXPECT_EQ(vcpus[0]->facts.cpu_time_ns, 327940000000ULL);
  EXPECT_EQ(vcpus[1]->facts.migrations, 17U);
  const auto iothreads = vm.threads_with(ThreadRole::iothread);
  ASSERT_EQ(iothreads.size(), 1U);
  EXPECT_EQ(iothreads[0]->iothread, "iothread1");
  EXPECT_EQ(vm.emulator_threads().size(), 5U);  // main, monitor and the three odd names
  EXPECT_EQ(vm.emulator_affinity().to_list(), "0-1");
  EXPECT_TRUE(vm.notes.empty());
}

TEST(Snapshot, HostileNamesKeepJsonValidAndTextOnOneLine) {
  FixtureTree tree;
  tree.add_process(100, kQemuArgv, qemu_threads());
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  const auto text = views::dump_json(views::threads_json(snapshot->vms[0], *snapshot));
  const auto parsed = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << text;
  EXPECT_EQ(parsed["threads"].size(), 8U);
  const auto rendered = views::render_threads(snapshot->vms[0], *snapshot);
  EXPECT_NE(rendered.find("CPU 2/KVM\\n"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("\\xff\\xfe name"), std::string::npos) << rendered;
}

// `list --json` and the exporter write the document a VM at a time; it must be the very
// document snapshot_json dumps, hostile names and notes included, for zero, one and two VMs.
TEST(Snapshot, JsonWrittenVmByVmIsTheWholeDocument) {
  FixtureTree tree;
  const auto streamed = [](const Snapshot& snapshot) {
    std::string text;
    views::write_snapshot_json(snapshot, [&](std::string_view part) { text += part; });
    return text;
  };
  for (int vms = 0; vms <= 2; ++vms) {
    if (vms == 1) tree.add_process(100, kQemuArgv, qemu_threads());
    if (vms == 2) {
      tree.add_process(200, {"qemu-system-x86_64", "-name", "guest=db"},
                       {{.tid = 200, .name = "qemu-system-x86"}, {.tid = 201, .name = "worker"}});
    }
    auto snapshot = take_snapshot(options_for_root(tree.root()));
    ASSERT_TRUE(snapshot);
    ASSERT_EQ(snapshot->vms.size(), static_cast<std::size_t>(vms));
    const auto text = streamed(*snapshot);
    EXPECT_EQ(text, views::dump_json(views::snapshot_json(*snapshot)));
    const auto parsed = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << text;
    EXPECT_EQ(parsed["vms"].size(), static_cast<std::size_t>(vms));
  }
}

TEST(Snapshot, MissingKernelFilesAreUnavailableNotZero) {
  FixtureTree tree;
  tree.add_process(100, {"qemu-system-x86_64", "-name", "guest=old,debug-threads=on"},
                   {{.tid = 100, .name = "qemu-system-x86"},
                    {.tid = 101, .name = "CPU 0/KVM", .schedstat = false, .sched = false}});
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  const auto& facts = snapshot->vms[0].vcpus()[0]->facts;
  EXPECT_FALSE(facts.cpu_time_ns.has_value());
  EXPECT_FALSE(facts.run_delay_ns.has_value());
  EXPECT_FALSE(facts.migrations.has_value());
  const auto json = views::snapshot_json(*snapshot);
  EXPECT_TRUE(json["vms"][0]["vcpus"][0]["run_delay_ns"].is_null());
  EXPECT_NE(views::render_list(*snapshot).find("n/a"), std::string::npos);
}

TEST(Snapshot, ThreadThatVanishesIsSkipped) {
  FixtureTree tree;
  auto threads = qemu_threads();
  tree.add_process(100, kQemuArgv, threads);
  tree.add_vanished_thread(100, 108);
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->vms[0].threads.size(), threads.size());
}

TEST(Snapshot, ProcessWithoutThreadsIsSkipped) {
  FixtureTree tree;
  tree.add_process(100, kQemuArgv, {});  // exited between listing and reading
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  EXPECT_TRUE(snapshot->vms.empty());
}

TEST(Snapshot, LibvirtStatusFileMapsUnnamedThreads) {
  FixtureTree tree;
  tree.add_process(200, {"/usr/bin/qemu-system-x86_64", "-name", "guest=nodebug"},
                   {{.tid = 200, .name = "qemu-system-x86"},
                    {.tid = 201, .name = "qemu-system-x86", .cpu = 1},
                    {.tid = 202, .name = "qemu-system-x86"},
                    {.tid = 203, .name = "qemu-system-x86"}});
  tree.write("run/libvirt/qemu/nodebug.xml",
             "<domstatus state='running' reason='booted' pid='200'>\n"
             "  <vcpus>\n    <vcpu id='0' pid='201'/>\n    <vcpu id='1' pid='202'/>\n  </vcpus>\n"
             "  <domain type='qemu'><name>nodebug</name></domain>\n</domstatus>\n");
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  const auto& vm = snapshot->vms[0];
  EXPECT_EQ(vm.vcpu_source, VcpuSource::libvirt_status);
  ASSERT_EQ(vm.vcpus().size(), 2U);
  EXPECT_EQ(vm.vcpus()[0]->tid, 201);
  EXPECT_EQ(vm.vcpus()[0]->facts.last_cpu, 1);
}

TEST(Snapshot, UnnamedThreadsWithoutMappingGetANote) {
  FixtureTree tree;
  tree.add_process(
      200, {"qemu-system-x86_64", "-name", "quiet"},
      {{.tid = 200, .name = "qemu-system-x86"}, {.tid = 201, .name = "qemu-system-x86"}});
  // A stale status file of another process must not be believed.
  tree.write("run/libvirt/qemu/quiet.xml",
             "<domstatus pid='999'><vcpus><vcpu id='0' pid='201'/></vcpus></domstatus>");
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->vms[0].vcpu_source, VcpuSource::unknown);
  EXPECT_TRUE(snapshot->vms[0].vcpus().empty());
  ASSERT_EQ(snapshot->vms[0].notes.size(), 1U);
  EXPECT_NE(snapshot->vms[0].notes[0].find("debug-threads=on"), std::string::npos);
}

TEST(Snapshot, VhostKernelThreadsJoinTheirVm) {
  FixtureTree tree;
  tree.add_process(100, kQemuArgv, qemu_threads());
  tree.add_process(150, {}, {{.tid = 150, .name = "vhost-100", .cpu = 1}});
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  const auto vhost = snapshot->vms[0].threads_with(ThreadRole::vhost);
  ASSERT_EQ(vhost.size(), 1U);
  EXPECT_EQ(vhost[0]->tid, 150);
}

TEST(FindVm, ByNameUuidOrPid) {
  FixtureTree tree;
  tree.add_process(100, kQemuArgv, qemu_threads());
  tree.add_process(200, {"firecracker", "--id", "100"},
                   {{.tid = 200, .name = "firecracker"}, {.tid = 201, .name = "fc_vcpu 0"}});
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  EXPECT_EQ((*find_vm(*snapshot, "web (1))"))->pid, 100);
  EXPECT_EQ((*find_vm(*snapshot, "6F1C2A9E-0B7D-4C1E-9A55-2F0E8D3B7C41"))->pid, 100);
  // A name wins over a PID: the Firecracker VM is called "100".
  EXPECT_EQ((*find_vm(*snapshot, "100"))->pid, 200);
  EXPECT_EQ((*find_vm(*snapshot, "200"))->pid, 200);
  const auto unknown = find_vm(*snapshot, "nosuch");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().exit_code, ExitCode::bad_input);
  EXPECT_NE(unknown.error().message.find("'nosuch'"), std::string::npos);
  EXPECT_NE(unknown.error().message.find("vcpumap list"), std::string::npos);
}

TEST(Snapshot, RootWithoutProcIsABadInput) {
  auto snapshot = take_snapshot(options_for_root("/nonexistent-root"));
  ASSERT_FALSE(snapshot);
  EXPECT_EQ(snapshot.error().exit_code, ExitCode::bad_input);
  EXPECT_NE(snapshot.error().message.find("/nonexistent-root"), std::string::npos);
}

}  // namespace
}  // namespace vcpumap
