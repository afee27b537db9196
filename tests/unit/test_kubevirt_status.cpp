// A KubeVirt VM's libvirt status file, read through ROOT/proc/PID/root at virt-launcher's paths:
// its vCPU thread ids (the pod's PID namespace, matched through NSpid) and its configured pinning,
// as list's JSON and audit's pin-drift show them.
#include <sys/stat.h>

#include <filesystem>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "audit/audit.h"
#include "audit_fixture.h"
#include "collect/snapshot.h"
#include "fixture_tree.h"
#include "sources/libvirt/domain_xml.h"
#include "sources/platform/kubevirt.h"
#include "sources/procfs/parse.h"
#include "views/json.h"
#include "views/prometheus_view.h"

namespace vcpumap {
namespace {

using testing::AuditMachine;
using testing::FixtureTree;

constexpr const char* kPodCgroup =
    "0::/kubepods.slice/kubepods-pod8d3c9a0e_5b7f_4c2a_9e1d_0f6b2a4c8e13.slice/"
    "cri-containerd-4f2b8c1d9e7a.scope\n";
constexpr const char* kNonRootPath = "run/libvirt/qemu/run/tenant-a_db-vm.xml";

// A status file as the pod's libvirt writes it: QEMU is pid 1 of the pod, vCPUs 0 and 1 are its
// threads 3 and 4, and dedicatedCpuPlacement pinned them to CPUs 1 and 0, the emulator to 0.
std::string status_xml(int qemu = 1, int vcpu0 = 3, int vcpu1 = 4) {
  return fmt::format(
      "<domstatus state='running' reason='booted' pid='{}'>\n"
      "  <vcpus>\n    <vcpu id='0' pid='{}'/>\n    <vcpu id='1' pid='{}'/>\n  </vcpus>\n"
      "  <domain type='kvm' id='1'>\n    <name>tenant-a_db-vm</name>\n"
      "    <vcpu placement='static'>2</vcpu>\n"
      "    <cputune>\n      <vcpupin vcpu='0' cpuset='1'/>\n      <vcpupin vcpu='1' "
      "cpuset='0'/>\n      <emulatorpin cpuset='0'/>\n    </cputune>\n  </domain>\n"
      "</domstatus>\n",
      qemu, vcpu0, vcpu1);
}

// Host tid -> (pod tid, affinity) for the threads of the KubeVirt QEMU, pid 200 on the host.
struct PodThread {
  int tid;
  int pod_tid;
  std::string affinity;
};

template <typename Tree>
void add_pod_qemu(Tree& tree, const std::vector<PodThread>& threads) {
  using namespace std::string_literals;
  tree.write("proc/200/cmdline", "/usr/libexec/qemu-kvm\0-name\0guest=tenant-a_db-vm\0"s);
  tree.write("proc/200/cgroup", kPodCgroup);
  for (const auto& thread : threads) {
    // Without debug-threads every thread is "qemu-kvm": only the status file tells vCPUs apart.
    tree.write(fmt::format("proc/200/task/{}/status", thread.tid),
               fmt::format("Name:\tqemu-kvm\nState:\tS (sleeping)\nTgid:\t200\nPid:\t{}\n"
                           "NSpid:\t{}\t{}\nCpus_allowed_list:\t{}\n",
                           thread.tid, thread.tid, thread.pod_tid, thread.affinity));
  }
}

// The KubeVirt QEMU (pid 200) with its vCPU thread named, as with debug-threads.
void add_named_pod_qemu(FixtureTree& tree) {
  tree.add_process(200, {"/usr/libexec/qemu-kvm", "-name", "guest=tenant-a_db-vm"},
                   {{.tid = 200, .name = "qemu-kvm"}, {.tid = 201, .name = "CPU 0/KVM"}});
  tree.write("proc/200/cgroup", kPodCgroup);
}

TEST(KubevirtStatus, NspidIsTheInnermostId) {
  EXPECT_EQ(procfs::parse_status_nspid("Name:\tx\nNSpid:\t4321\t12\t3\nNSgid:\t1\n"), 3);
  EXPECT_EQ(procfs::parse_status_nspid("NSpid:\t4321\n"), 4321);
  EXPECT_FALSE(procfs::parse_status_nspid("Name:\tx\nPid:\t4\n"));
  EXPECT_FALSE(procfs::parse_status_nspid("Name:\tx\nNSpid:\t\n"));
  EXPECT_FALSE(procfs::parse_status_nspid("NSpid:\t12\tx\n"));
}

TEST(KubevirtStatus, DomainInsideDomstatusIsParsed) {
  const auto definition = libvirt::parse_domain_xml(status_xml());
  ASSERT_TRUE(definition);
  EXPECT_EQ(definition->max_vcpus, 2);
  EXPECT_EQ(definition->vcpupins.at(0).to_list(), "1");
  EXPECT_EQ(definition->emulatorpin->to_list(), "0");
  EXPECT_FALSE(libvirt::parse_domain_xml("<domstatus pid='1'/>"));
}

TEST(KubevirtStatus, VcpuThreadsAndPinsFromThePodsStatusFile) {
  FixtureTree tree;
  tree.add_process(200, {"/usr/libexec/qemu-kvm", "-name", "guest=tenant-a_db-vm"},
                   {{.tid = 200, .name = "qemu-kvm"},
                    {.tid = 205, .name = "qemu-kvm"},
                    {.tid = 207, .name = "qemu-kvm"},
                    {.tid = 208, .name = "qemu-kvm"}});
  add_pod_qemu(tree, {{200, 1, "0-1"}, {205, 2, "0-1"}, {207, 3, "1"}, {208, 4, "0"}});
  tree.write(fmt::format("proc/200/root/{}", kNonRootPath), status_xml());
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  ASSERT_EQ(snapshot->vms.size(), 1U);
  const auto json = views::vm_json(snapshot->vms[0]);
  EXPECT_EQ(json["vcpu_source"], "libvirt-status");
  ASSERT_EQ(json["vcpus"].size(), 2U);
  EXPECT_EQ(json["vcpus"][0]["tid"], 207);  // pod tid 3
  EXPECT_EQ(json["vcpus"][1]["tid"], 208);  // pod tid 4
  EXPECT_EQ(json["kubevirt"]["status_file"], "/" + std::string(kNonRootPath));
  EXPECT_EQ(json["kubevirt"]["vcpu_source"], "libvirt-status");
  EXPECT_EQ(json["kubevirt"]["vcpupin"], nlohmann::json::parse("[[1], [0]]"));
  EXPECT_EQ(json["kubevirt"]["emulatorpin"], nlohmann::json::parse("[0]"));
  EXPECT_TRUE(snapshot->vms[0].notes.empty()) << snapshot->vms[0].notes[0];
}

TEST(KubevirtStatus, MetricsCountAVcpuOffThePodsPin) {
  FixtureTree tree;
  // vCPU 0 (tid 207) last ran on CPU 0: within its affinity 0-1, outside the pod's pin (CPU 1).
  tree.add_process(200, {"/usr/libexec/qemu-kvm", "-name", "guest=tenant-a_db-vm"},
                   {{.tid = 200, .name = "qemu-kvm"},
                    {.tid = 205, .name = "qemu-kvm"},
                    {.tid = 207, .name = "qemu-kvm", .cpu = 0},
                    {.tid = 208, .name = "qemu-kvm", .cpu = 0}});
  add_pod_qemu(tree, {{200, 1, "0-1"}, {205, 2, "0-1"}, {207, 3, "0-1"}, {208, 4, "0"}});
  tree.write(fmt::format("proc/200/root/{}", kNonRootPath), status_xml());
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  const auto text = views::render_metrics(*snapshot, {});
  const auto at = text.find("\nvcpumap_vm_vcpus_off_pinned_cpus{vm=\"tenant-a_db-vm\"");
  ASSERT_NE(at, std::string::npos) << text;
  const auto line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  EXPECT_TRUE(line.ends_with("} 1")) << line;
}

TEST(KubevirtStatus, RootLauncherPathAndPinsWithNamedThreads) {
  FixtureTree tree;
  add_named_pod_qemu(tree);
  tree.write("proc/200/root/run/libvirt/qemu/tenant-a_db-vm.xml", status_xml());
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  const auto json = views::vm_json(snapshot->vms.at(0));
  // The names give the vCPU; the file still gives the pins.
  EXPECT_EQ(json["vcpu_source"], "thread-names");
  EXPECT_EQ(json["kubevirt"]["status_file"], "/run/libvirt/qemu/tenant-a_db-vm.xml");
  EXPECT_EQ(json["kubevirt"]["vcpupin"][0], nlohmann::json::parse("[1]"));
}

TEST(KubevirtStatus, UnmatchedPodTidsAreIgnoredWithANote) {
  FixtureTree tree;
  tree.add_process(200, {"/usr/libexec/qemu-kvm", "-name", "guest=tenant-a_db-vm"},
                   {{.tid = 200, .name = "qemu-kvm"}, {.tid = 207, .name = "qemu-kvm"}});
  add_pod_qemu(tree, {{200, 1, "0-1"}, {207, 3, "0-1"}});
  // Thread 4 is no thread of this QEMU: a stale file, not to be half-believed.
  tree.write(fmt::format("proc/200/root/{}", kNonRootPath), status_xml(1, 3, 4));
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  const auto& vm = snapshot->vms.at(0);
  EXPECT_EQ(vm.vcpu_source, VcpuSource::unknown);
  EXPECT_TRUE(vm.vcpus().empty());
  ASSERT_FALSE(vm.notes.empty());
  EXPECT_NE(vm.notes[0].find("are not all its threads' (NSpid); ignored"), std::string::npos)
      << vm.notes[0];
  EXPECT_EQ(views::vm_json(vm)["kubevirt"]["vcpupin"][1],
            nlohmann::json::parse("[0]"));  // the pins still stand
}

TEST(KubevirtStatus, NoStatusFileIsNull) {
  FixtureTree tree;
  add_named_pod_qemu(tree);
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  const auto json = views::vm_json(snapshot->vms.at(0));
  EXPECT_TRUE(json["kubevirt"]["status_file"].is_null());
  EXPECT_TRUE(json["kubevirt"]["vcpupin"].is_null());
  EXPECT_TRUE(json["kubevirt"]["emulatorpin"].is_null());
}

TEST(KubevirtStatus, ReadAsThePodSeesItAndOnlyARegularFile) {
  FixtureTree tree;
  add_named_pod_qemu(tree);
  // An absolute link resolves in the pod's root, as the pod's libvirt would see it.
  tree.write("proc/200/root/var/lib/status.xml", status_xml());
  const auto pod = tree.root() / "proc/200/root";
  std::filesystem::create_directories(pod / "run/libvirt/qemu/run");
  std::filesystem::create_symlink("/var/lib/status.xml", pod / kNonRootPath);
  auto status = kubevirt::read_launcher_status(tree.root(), 200, "tenant-a_db-vm");
  ASSERT_TRUE(status && *status) << (status ? "none" : status.error().message);
  EXPECT_EQ((*status)->threads.vcpu_tids.at(1), 4);
  // A FIFO (the pod's user can make one) is no status file, and reading it does not block.
  std::filesystem::remove(pod / kNonRootPath);
  ASSERT_EQ(mkfifo((pod / kNonRootPath).c_str(), 0600), 0);
  status = kubevirt::read_launcher_status(tree.root(), 200, "tenant-a_db-vm");
  ASSERT_TRUE(status);
  EXPECT_FALSE(*status);
  EXPECT_FALSE(*kubevirt::read_launcher_status(tree.root(), 200, "../x"));
  // Not XML: a note naming the file, and the VM is still KubeVirt's.
  std::filesystem::remove(pod / kNonRootPath);
  tree.write(fmt::format("proc/200/root/{}", kNonRootPath), "<domstatus");
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  const auto& vm = snapshot->vms.at(0);
  ASSERT_TRUE(vm.kubevirt);
  ASSERT_EQ(vm.notes.size(), 1U);
  EXPECT_EQ(vm.notes[0],
            "tenant-a_db-vm (pid 200): its pod's /run/libvirt/qemu/run/tenant-a_db-vm.xml: libvirt "
            "status file is not XML; ignored");
}

std::vector<audit::Finding> drift_findings(const std::string& vcpu0, const std::string& vcpu1,
                                           const std::string& emulator) {
  AuditMachine machine("");  // 2 CPUs
  machine.add_qemu(200, "tenant-a_db-vm",
                   {{.tid = 200, .name = "qemu-kvm", .affinity = emulator},
                    {.tid = 207, .name = "qemu-kvm", .affinity = vcpu0},
                    {.tid = 208, .name = "qemu-kvm", .affinity = vcpu1}});
  add_pod_qemu(machine, {{200, 1, emulator}, {207, 3, vcpu0}, {208, 4, vcpu1}});
  machine.write(fmt::format("proc/200/root/{}", kNonRootPath), status_xml());
  return testing::findings_of(machine, "pin-drift");
}

TEST(KubevirtStatus, AuditComparesThePodsPinsWithTheThreads) {
  const auto findings = drift_findings("0-1", "0", "0-1");
  ASSERT_EQ(findings.size(), 2U);
  EXPECT_NE(findings[0].message.find("vCPU 0 (tid 207) may run on CPUs 0-1 but the pod's libvirt "
                                     "status file configures CPU 1"),
            std::string::npos)
      << findings[0].message;
  EXPECT_EQ(findings[0].fix, "vcpumap vcpupin tenant-a_db-vm 0 1");
  EXPECT_NE(findings[1].message.find("emulator thread (tid 200)"), std::string::npos)
      << findings[1].message;
  EXPECT_EQ(findings[1].fix, "vcpumap emulatorpin tenant-a_db-vm 0");
  EXPECT_TRUE(drift_findings("1", "0", "0").empty());
}

}  // namespace
}  // namespace vcpumap
