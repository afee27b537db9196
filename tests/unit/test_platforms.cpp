// Proxmox VE, KubeVirt, Firecracker, cloud-hypervisor and crosvm hosts: their names for VMs, their
// configs and pod cgroups read from fixture roots, and what list, find_vm, serve and audit make of
// them.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "audit/audit.h"
#include "audit_fixture.h"
#include "collect/sampler.h"
#include "collect/snapshot.h"
#include "core/identify.h"
#include "fixture_tree.h"
#include "sources/platform/kubernetes.h"
#include "sources/platform/proxmox.h"
#include "views/audit_view.h"
#include "views/json.h"
#include "views/prometheus_view.h"

namespace vcpumap {
namespace {

using testing::AuditMachine;
using testing::AuditThread;
using testing::findings_of;
using testing::FixtureTree;

constexpr const char* kPodUid = "8d3c9a0e-5b7f-4c2a-9e1d-0f6b2a4c8e13";
constexpr const char* kContainer = "4f2b8c1d9e7a";

TEST(PlatformIdentity, ProxmoxVmidFromId) {
  auto vm = identify_vm({"/usr/bin/kvm", "-id", "4711", "-name", "web01,debug-threads=on"});
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->proxmox_vmid, 4711);
  EXPECT_EQ(vm->name, "web01");
  EXPECT_EQ(identify_vm({"kvm", "-id", "0x12"})->proxmox_vmid, -1);
  EXPECT_EQ(identify_vm({"kvm", "-name", "a"})->proxmox_vmid, -1);
}

TEST(PlatformIdentity, IdOrApiSocketNamesMicroVms) {
  EXPECT_EQ(identify_vm({"firecracker", "--id", "mvm-a1"})->name, "mvm-a1");
  EXPECT_EQ(identify_vm({"firecracker", "--api-sock", "/run/fc/b2.sock"})->name, "/run/fc/b2.sock");
  EXPECT_EQ(identify_vm({"cloud-hypervisor", "--api-socket", "path=/run/ch.sock,fd=3"})->name,
            "/run/ch.sock");
  EXPECT_EQ(identify_vm({"cloud-hypervisor", "--api-socket", "/run/ch2.sock"})->name,
            "/run/ch2.sock");
  EXPECT_EQ(identify_vm({"cloud-hypervisor", "--api-socket", "fd=3"})->name, "");
  EXPECT_EQ(identify_vm({"crosvm", "run", "--socket", "/run/cv.sock", "vmlinux"})->name,
            "/run/cv.sock");
}

TEST(PlatformIdentity, KubevirtDomainNames) {
  const auto parts = split_kubevirt_name("tenant-a_db-vm");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->first, "tenant-a");
  EXPECT_EQ(parts->second, "db-vm");
  EXPECT_FALSE(split_kubevirt_name("instance-00000001"));
  EXPECT_FALSE(split_kubevirt_name("_x"));
  EXPECT_FALSE(split_kubevirt_name("a_b_c"));
  EXPECT_FALSE(split_kubevirt_name("Tenant_vm"));
}

TEST(ProxmoxConfig, ReadsCpuKeysOfTheCurrentConfig) {
  const auto config = proxmox::parse_qemu_server_config(
      "#web server\nboot: order=scsi0\ncores: 2\nsockets: 1\naffinity: 1,3-4\nnuma: 1\n"
      "cpuunits: 2048\ncpulimit: 1.5\nname: web01\nvcpus: 1\n\n[snap1]\ncores: 8\nname: old\n");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->name, "web01");
  EXPECT_EQ(config->cores, 2);
  EXPECT_EQ(config->sockets, 1);
  EXPECT_EQ(config->vcpu_count(), 1);
  EXPECT_EQ(config->affinity->to_list(), "1,3-4");
  EXPECT_EQ(config->affinity_text, "1,3-4");
  EXPECT_EQ(config->numa, true);
  EXPECT_EQ(config->cpuunits, 2048);
  EXPECT_EQ(config->cpulimit, 1.5);
  const auto bare = proxmox::parse_qemu_server_config("memory: 2048\n");
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare->affinity);
  EXPECT_FALSE(bare->cores);
  EXPECT_EQ(bare->vcpu_count(), 1);
}

TEST(ProxmoxConfig, BadValuesNameTheirLine) {
  for (const char* text : {"cores: two\n", "name: a\naffinity: 1-\n", "numa: yes\n",
                           "cpulimit: 200\n", "cpuunits: 0\n", "just words\n"}) {
    const auto config = proxmox::parse_qemu_server_config(text);
    ASSERT_FALSE(config) << text;
    EXPECT_EQ(config.error().exit_code, ExitCode::bad_input);
    EXPECT_EQ(config.error().message.rfind("line ", 0), 0U) << config.error().message;
  }
}

TEST(PodCgroup, SystemdAndCgroupfsDriversV1AndV2) {
  // systemd driver, cgroup v2.
  auto pod = kubernetes::parse_pod_cgroup(
      fmt::format("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/"
                  "cri-containerd-{}.scope\n",
                  "8d3c9a0e_5b7f_4c2a_9e1d_0f6b2a4c8e13", kContainer));
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->pod_uid, kPodUid);
  EXPECT_EQ(pod->container_id, kContainer);
  // cgroupfs driver, cgroup v1.
  pod = kubernetes::parse_pod_cgroup(fmt::format(
      "12:pids:/kubepods/burstable/pod{0}/{1}\n4:cpuset:/kubepods/burstable/pod{0}/{1}\n0::/\n",
      kPodUid, kContainer));
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->pod_uid, kPodUid);
  EXPECT_EQ(pod->container_id, kContainer);
  // Guaranteed QoS: no QoS level in the path.
  EXPECT_EQ(kubernetes::parse_pod_cgroup_path(
                "/kubepods.slice/kubepods-pod8d3c9a0e_5b7f.slice/crio-ab12.scope")
                ->pod_uid,
            "8d3c9a0e-5b7f");
  EXPECT_FALSE(kubernetes::parse_pod_cgroup("0::/machine.slice/machine-qemu.scope\n"));
  EXPECT_FALSE(kubernetes::parse_pod_cgroup("0::/pod1234\n"));  // no kubepods above it
  EXPECT_FALSE(kubernetes::parse_pod_cgroup("0::/kubepods/podXYZ\n"));
}

std::string cmdline(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& arg : argv) text += arg + '\0';
  return text;
}

// A fixture with a Proxmox VM (VMID 4711, pid 100), two KubeVirt VMs (pids 200 and 300, v2
// systemd and v1 cgroupfs layouts) and a Firecracker microVM (pid 400).
Snapshot platform_snapshot(FixtureTree& tree) {
  tree.add_process(100, {"/usr/bin/kvm", "-id", "4711", "-name", "web01,debug-threads=on"},
                   {{.tid = 100, .name = "kvm"}, {.tid = 101, .name = "CPU 0/KVM"}});
  tree.write("etc/pve/qemu-server/4711.conf", "cores: 1\nname: web01\naffinity: 1\n");
  tree.add_process(200, {"/usr/libexec/qemu-kvm", "-name", "guest=tenant-a_db-vm"},
                   {{.tid = 200, .name = "qemu-kvm"}, {.tid = 201, .name = "CPU 0/KVM"}});
  tree.write("proc/200/cgroup",
             fmt::format("0::/kubepods.slice/kubepods-burstable.slice/"
                         "kubepods-burstable-pod8d3c9a0e_5b7f_4c2a_9e1d_0f6b2a4c8e13.slice/"
                         "cri-containerd-{}.scope\n",
                         kContainer));
  tree.add_process(300, {"/usr/libexec/qemu-kvm", "-name", "guest=tenant-b_cache"},
                   {{.tid = 300, .name = "qemu-kvm"}, {.tid = 301, .name = "CPU 0/KVM"}});
  tree.write("proc/300/cgroup",
             fmt::format("4:cpuset:/kubepods/besteffort/pod{}/{}\n0::/\n", kPodUid, kContainer));
  tree.add_process(400, {"firecracker", "--id", "mvm-a1"},
                   {{.tid = 400, .name = "firecracker"}, {.tid = 401, .name = "fc_vcpu 0"}});
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  EXPECT_TRUE(snapshot) << snapshot.error().message;
  return std::move(*snapshot);
}

TEST(PlatformSnapshot, ProxmoxKubevirtAndFirecrackerInJson) {
  FixtureTree tree;
  const auto snapshot = platform_snapshot(tree);
  ASSERT_EQ(snapshot.vms.size(), 4U);
  const auto json = views::snapshot_json(snapshot);
  const auto& vms = json["vms"];
  EXPECT_EQ(vms[0]["proxmox"]["vmid"], 4711);
  EXPECT_EQ(vms[0]["proxmox"]["affinity"], "1");
  EXPECT_EQ(vms[0]["proxmox"]["cores"], 1);
  EXPECT_TRUE(vms[0]["proxmox"]["sockets"].is_null());  // not set: null, not 0
  EXPECT_TRUE(vms[0]["kubevirt"].is_null());
  EXPECT_EQ(vms[1]["kubevirt"]["namespace"], "tenant-a");
  EXPECT_EQ(vms[1]["kubevirt"]["name"], "db-vm");
  EXPECT_EQ(vms[1]["kubevirt"]["pod_uid"], kPodUid);
  EXPECT_TRUE(vms[1]["proxmox"].is_null());
  EXPECT_EQ(vms[2]["kubevirt"]["namespace"], "tenant-b");
  EXPECT_EQ(vms[2]["kubevirt"]["pod_uid"], kPodUid);
  EXPECT_EQ(vms[3]["name"], "mvm-a1");
  EXPECT_EQ(vms[3]["vcpus"].size(), 1U);
}

TEST(PlatformSnapshot, MissingOrBadProxmoxConfigIsANote) {
  FixtureTree tree;
  tree.add_process(100, {"kvm", "-id", "4711", "-name", "web01,debug-threads=on"},
                   {{.tid = 100, .name = "kvm"}, {.tid = 101, .name = "CPU 0/KVM"}});
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  ASSERT_EQ(snapshot->vms.size(), 1U);
  const auto json = views::vm_json(snapshot->vms[0]);
  EXPECT_EQ(json["proxmox"]["vmid"], 4711);
  EXPECT_EQ(json["proxmox"]["config"], false);
  EXPECT_TRUE(json["proxmox"]["affinity"].is_null());
  ASSERT_EQ(snapshot->vms[0].notes.size(), 1U);
  EXPECT_NE(snapshot->vms[0].notes[0].find("4711.conf"), std::string::npos);
  tree.write("etc/pve/qemu-server/4711.conf", "affinity: x\n");
  snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  EXPECT_NE(snapshot->vms[0].notes.at(0).find("line 1: affinity 'x'"), std::string::npos);
}

TEST(PlatformSnapshot, FindVmByVmidAndNamespaceName) {
  FixtureTree tree;
  const auto snapshot = platform_snapshot(tree);
  EXPECT_EQ((*find_vm(snapshot, "4711"))->pid, 100);
  EXPECT_EQ((*find_vm(snapshot, "tenant-a/db-vm"))->pid, 200);
  EXPECT_EQ((*find_vm(snapshot, "tenant-b/cache"))->pid, 300);
  EXPECT_EQ((*find_vm(snapshot, "400"))->pid, 400);  // no VMID 400: the PID
  EXPECT_FALSE(find_vm(snapshot, "tenant-a/cache"));
}

TEST(PlatformSnapshot, VmidComesBeforeAPid) {
  FixtureTree tree;
  tree.add_process(100, {"kvm", "-id", "200", "-name", "a,debug-threads=on"},
                   {{.tid = 100, .name = "kvm"}, {.tid = 101, .name = "CPU 0/KVM"}});
  tree.add_process(200, {"kvm", "-id", "300", "-name", "b,debug-threads=on"},
                   {{.tid = 200, .name = "kvm"}, {.tid = 201, .name = "CPU 0/KVM"}});
  auto snapshot = take_snapshot(options_for_root(tree.root()));
  ASSERT_TRUE(snapshot);
  EXPECT_EQ((*find_vm(*snapshot, "200"))->name, "a");
}

TEST(PlatformMetrics, LabelsNameTheVmidNamespaceAndPod) {
  FixtureTree tree;
  const auto text = views::render_metrics(platform_snapshot(tree), {});
  EXPECT_NE(text.find("vm=\"web01\",uuid=\"\",proxmox_vmid=\"4711\""), std::string::npos);
  EXPECT_NE(text.find(fmt::format("vm=\"tenant-a_db-vm\",uuid=\"\",namespace=\"tenant-a\","
                                  "kubevirt_vm=\"db-vm\",pod_uid=\"{}\"",
                                  kPodUid)),
            std::string::npos);
}

// ---- a config edited while a sampler runs ----

TEST(ProxmoxConfigFiles, ReadAgainOnlyWhenTheFileChanged) {
  FixtureTree tree;
  tree.write("etc/pve/qemu-server/4711.conf", "affinity: 1\n");
  proxmox::ConfigFiles configs(tree.root());
  EXPECT_EQ(configs.get(4711)->affinity->to_list(), "1");
  EXPECT_EQ(configs.parses(), 1U);
  EXPECT_EQ(configs.get(4711)->affinity->to_list(), "1");
  EXPECT_EQ(configs.parses(), 1U);  // unchanged: not parsed again
  // Same size, written within the clock's granularity: still seen (the stamp was too recent).
  tree.write("etc/pve/qemu-server/4711.conf", "affinity: 0\n");
  EXPECT_EQ(configs.get(4711)->affinity->to_list(), "0");
  EXPECT_EQ(configs.parses(), 2U);
  // Replaced (a new inode), as editors and pmxcfs do; then removed.
  tree.write("etc/pve/qemu-server/4711.conf.tmp", "name: web01\naffinity: 0-1\n");
  std::filesystem::rename(tree.root() / "etc/pve/qemu-server/4711.conf.tmp",
                          tree.root() / "etc/pve/qemu-server/4711.conf");
  EXPECT_EQ(configs.get(4711)->affinity->to_list(), "0-1");
  std::filesystem::remove(tree.root() / "etc/pve/qemu-server/4711.conf");
  EXPECT_NE(configs.get(4711).error().message.find("cannot read"), std::string::npos);
  EXPECT_FALSE(configs.get(12));
  EXPECT_EQ(configs.parses(), 3U);
}

TEST(ProxmoxConfigFiles, AnOldFileIsTrustedAndAnEditIsSeen) {
  FixtureTree tree;
  const auto path = tree.root() / "etc/pve/qemu-server/4711.conf";
  tree.write("etc/pve/qemu-server/4711.conf", "affinity: 1\n");
  const auto old = std::filesystem::file_time_type::clock::now() - std::chrono::hours(1);
  std::filesystem::last_write_time(path, old);
  proxmox::ConfigFiles configs(tree.root());
  EXPECT_EQ(configs.get(4711)->affinity->to_list(), "1");
  EXPECT_EQ(configs.get(4711)->affinity->to_list(), "1");
  EXPECT_EQ(configs.parses(), 1U);
  tree.write("etc/pve/qemu-server/4711.conf", "affinity: 0\n");  // a new mtime
  EXPECT_EQ(configs.get(4711)->affinity->to_list(), "0");
}

TEST(ProxmoxConfigFiles, TheSamplerSeesAnEditAndABrokenConfig) {
  FixtureTree tree;
  tree.add_process(100, {"/usr/bin/kvm", "-id", "4711", "-name", "web01,debug-threads=on"},
                   {{.tid = 100, .name = "kvm"}, {.tid = 101, .name = "CPU 0/KVM"}});
  tree.write("etc/pve/qemu-server/4711.conf", "name: web01\naffinity: 1\n");
  SamplerOptions options;
  options.snapshot = options_for_root(tree.root());
  Sampler sampler(options);
  auto now = std::chrono::steady_clock::now();
  auto sample = sampler.sample_at(now, std::chrono::system_clock::now());
  ASSERT_TRUE(sample) << sample.error().message;
  ASSERT_EQ((*sample)->snapshot.vms.size(), 1U);
  EXPECT_EQ((*sample)->snapshot.vms[0].proxmox->config->affinity->to_list(), "1");
  tree.write("etc/pve/qemu-server/4711.conf", "name: web01\naffinity: 0-1\n");
  sample = sampler.sample_at(now + std::chrono::seconds(1), std::chrono::system_clock::now());
  ASSERT_TRUE(sample);
  EXPECT_EQ((*sample)->snapshot.vms[0].proxmox->config->affinity->to_list(), "0-1");
  tree.write("etc/pve/qemu-server/4711.conf", "affinity: x\n");
  sample = sampler.sample_at(now + std::chrono::seconds(2), std::chrono::system_clock::now());
  ASSERT_TRUE(sample);
  const auto& vm = (*sample)->snapshot.vms[0];
  EXPECT_FALSE(vm.proxmox->config);
  ASSERT_EQ(vm.notes.size(), 1U);
  EXPECT_NE(vm.notes[0].find("affinity 'x'"), std::string::npos) << vm.notes[0];
  tree.write("etc/pve/qemu-server/4711.conf", "affinity: 0\n");
  sample = sampler.sample_at(now + std::chrono::seconds(3), std::chrono::system_clock::now());
  ASSERT_TRUE(sample);
  EXPECT_TRUE((*sample)->snapshot.vms[0].notes.empty());  // the note went with the fault
  EXPECT_EQ((*sample)->snapshot.vms[0].proxmox->config->affinity->to_list(), "0");
}

// audit --watch judges the config as it is at the end of the watch.
TEST(ProxmoxConfigFiles, AuditWatchJudgesTheConfigOfTheEnd) {
  AuditMachine machine("");
  machine.add_qemu(100, "web01",
                   {{.tid = 100, .name = "kvm", .affinity = "0-1"},
                    {.tid = 101, .name = "CPU 0/KVM", .affinity = "0-1"}});
  machine.write("proc/100/cmdline",
                cmdline({"kvm", "-id", "4711", "-name", "web01,debug-threads=on"}));
  machine.write("etc/pve/qemu-server/4711.conf", "affinity: 1\n");
  audit::GatherOptions options;
  options.snapshot = options_for_root(machine.root());
  options.watch = std::chrono::milliseconds(200);
  auto input = audit::look(options);
  ASSERT_TRUE(input) << input.error().message;
  machine.write("etc/pve/qemu-server/4711.conf", "affinity: 0-1\n");
  audit::watch(*input, options);
  EXPECT_EQ(input->snapshot.vms.at(0).proxmox->config->affinity->to_list(), "0-1");
  for (const auto& finding : audit::run_rules(*input)) {
    EXPECT_NE(finding.rule, "pin-drift") << finding.message;  // 0-1 is what the threads have
  }
}

// ---- audit ----

std::vector<audit::Finding> proxmox_findings(const std::string& emulator, const std::string& vcpu,
                                             const std::string& rule) {
  AuditMachine machine("");  // the 2-CPU fixture
  machine.add_qemu(100, "web01",
                   {{.tid = 100, .name = "kvm", .affinity = emulator},
                    {.tid = 101, .name = "CPU 0/KVM", .affinity = vcpu}});
  machine.write("proc/100/cmdline",
                cmdline({"kvm", "-id", "4711", "-name", "web01,debug-threads=on"}));
  machine.write("etc/pve/qemu-server/4711.conf", "name: web01\ncores: 1\naffinity: 1\n");
  return findings_of(machine, rule);
}

TEST(PlatformAudit, ProxmoxAffinityDriftGivesTaskset) {
  const auto findings = proxmox_findings("0-1", "0-1", "pin-drift");
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_NE(findings[0].message.find("Proxmox's affinity in 4711.conf gives the VM CPU 1"),
            std::string::npos)
      << findings[0].message;
  EXPECT_EQ(findings[0].fix, "taskset --cpu-list --all-tasks --pid 1 100");
  // Moved back within the affinity: no drift; pinned finer within it is no drift either.
  EXPECT_TRUE(proxmox_findings("1", "1", "pin-drift").empty());
}

TEST(PlatformAudit, ProxmoxEmulatorOnVcpuCpuExplainsAndPinsPerThread) {
  const auto findings = proxmox_findings("1", "1", "emulator-on-vcpu-cpu");
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_NE(findings[0].message.find("'affinity: 1' in 4711.conf applies to every thread"),
            std::string::npos)
      << findings[0].message;
  EXPECT_EQ(findings[0].fix,
            "qm set 4711 --affinity 0-1 && vcpumap vcpupin web01 0 1 && vcpumap emulatorpin "
            "web01 0");
}

TEST(PlatformAudit, SharedPcpuAlwaysGivesAFix) {
  // Two VMs on CPU 1 alone, emulator threads on CPU 0: no CPU is free of pinned threads, but
  // moving one vCPU off CPU 1 still ends the turn-taking.
  AuditMachine machine("");
  machine.add_qemu(100, "web",
                   {{.tid = 100, .name = "qemu-system-x86", .affinity = "0"},
                    {.tid = 101, .name = "CPU 0/KVM", .affinity = "1"}});
  machine.add_qemu(200, "db",
                   {{.tid = 200, .name = "qemu-system-x86", .affinity = "0"},
                    {.tid = 201, .name = "CPU 0/KVM", .affinity = "1"}});
  const auto shared = findings_of(machine, "shared-pcpu");
  ASSERT_EQ(shared.size(), 1U);
  EXPECT_EQ(shared[0].fix, "vcpumap vcpupin db 0 0");
}

}  // namespace
}  // namespace vcpumap
