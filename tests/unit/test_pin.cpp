// Pinning: plan_pin refuses every bad input before anything changes, with one line naming it;
// apply_affinity changes all threads or none (checked on real threads of this test process);
// the pin tables show a libvirt domain's configured pinning and other VMs' thread affinity.
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "pin/pin.h"
#include "sources/procfs/affinity.h"
#include "views/pin_view.h"
#include "views/virsh_view.h"

namespace vcpumap {
namespace {

using pin::PinTarget;

CpuSet cpus(std::string_view list) {
  return CpuSet::parse_list(list).value();
}

// A host whose CPUs are `present`, of which `online` are online.
Topology host(std::string_view present, std::string_view online) {
  Topology topology;
  topology.present = cpus(present);
  topology.possible = topology.present;
  topology.online = cpus(online);
  for (const int cpu : topology.present.cpus()) {
    Cpu entry;
    entry.cpu = cpu;
    entry.online = topology.online.contains(cpu);
    topology.cpus.push_back(entry);
  }
  return topology;
}

VmThread thread(int tid, ThreadRole role, int vcpu = -1, std::string iothread = {}) {
  VmThread out;
  out.tid = tid;
  out.role = role;
  out.vcpu = vcpu;
  out.iothread = std::move(iothread);
  out.facts.affinity = cpus("0-1");
  return out;
}

// "web": 4 vCPUs (tids 101-104), I/O thread io1, QEMU's main, monitor and RCU threads, a vhost.
Vm web_vm() {
  Vm vm;
  vm.pid = 100;
  vm.name = "web";
  vm.threads = {thread(101, ThreadRole::vcpu, 0),
                thread(102, ThreadRole::vcpu, 1),
                thread(103, ThreadRole::vcpu, 2),
                thread(104, ThreadRole::vcpu, 3),
                thread(105, ThreadRole::iothread, -1, "io1"),
                thread(100, ThreadRole::emulator_main),
                thread(106, ThreadRole::emulator_monitor),
                thread(107, ThreadRole::emulator_other),
                thread(108, ThreadRole::vhost)};
  return vm;
}

// A shut-off libvirt domain: 2 vCPUs, vCPU 0 pinned to CPU 1, I/O thread 1; no process.
Vm inactive_domain() {
  Vm vm;
  vm.name = "db";
  LibvirtDomain domain;
  domain.name = "db";
  domain.uuid = "5c0a3f51-1b2c-4d3e-8f90-123456789abc";
  domain.state = "shut off";
  domain.vcpus = 2;
  domain.vcpu_pins = {cpus("1"), CpuSet{}};
  domain.iothreads = {{1, cpus("0")}};
  vm.libvirt = domain;
  return vm;
}

// The error plan_pin gives; fails the test when there is none.
Error plan_error(const Vm& vm, const Topology& topology, PinTarget target, std::string_view text) {
  auto plan = pin::plan_pin(vm, topology, std::move(target), text);
  EXPECT_FALSE(plan.ok()) << "'" << text << "' was accepted";
  if (plan.ok()) return {};
  EXPECT_EQ(plan.error().exit_code, ExitCode::bad_input) << plan.error().message;
  EXPECT_EQ(plan.error().message.find('\n'), std::string::npos) << "not one line";
  return plan.error();
}

TEST(PlanPin, TakesVirshSyntaxAndFindsTheVcpuThread) {
  auto plan = pin::plan_pin(web_vm(), host("0-3", "0-3"), PinTarget::of_vcpu(1), "0-3,^2");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->cpus.to_list(), "0-1,3");
  EXPECT_EQ(plan->tids, std::vector<int>{102});
}

TEST(PlanPin, BadSyntaxNamesTheText) {
  const auto vm = web_vm();
  const auto topology = host("0-1", "0-1");
  for (const auto* text : {"0-", "a", "1-0", "0,,1", "^0-1", "-1", "0x1"}) {
    const auto error = plan_error(vm, topology, PinTarget::of_vcpu(0), text);
    EXPECT_NE(error.message.find(fmt::format("'{}'", text)), std::string::npos) << error.message;
  }
}

TEST(PlanPin, CpuBeyondTheHost) {
  EXPECT_EQ(plan_error(web_vm(), host("0-1", "0-1"), PinTarget::of_vcpu(0), "0,7").message,
            "CPU 7 in '0,7' is beyond this host's CPUs 0-1");
  EXPECT_EQ(plan_error(web_vm(), host("0-1", "0-1"), PinTarget::of_vcpu(0), "99").message,
            "CPU 99 in '99' is beyond this host's CPUs 0-1");
}

TEST(PlanPin, OfflineCpu) {
  EXPECT_EQ(plan_error(web_vm(), host("0-3", "0-2"), PinTarget::of_vcpu(0), "3").message,
            "CPU 3 in '3' is offline; online CPUs are 0-2");
  // Leaving the offline CPU out makes it acceptable.
  EXPECT_TRUE(pin::plan_pin(web_vm(), host("0-3", "0-2"), PinTarget::of_vcpu(0), "0-3,^3").ok());
}

TEST(PlanPin, SparseNumbering) {
  const auto topology = host("0-3,8-11", "0-3,8,10-11");
  const auto vm = web_vm();
  EXPECT_EQ(plan_error(vm, topology, PinTarget::of_vcpu(0), "5").message,
            "CPU 5 in '5' is not one of this host's CPUs 0-3,8-11");
  EXPECT_EQ(plan_error(vm, topology, PinTarget::of_vcpu(0), "0,9").message,
            "CPU 9 in '0,9' is offline; online CPUs are 0-3,8,10-11");
  EXPECT_EQ(plan_error(vm, topology, PinTarget::of_vcpu(0), "12").message,
            "CPU 12 in '12' is beyond this host's CPUs 0-3,8-11");
  auto plan = pin::plan_pin(vm, topology, PinTarget::of_vcpu(0), "8,10-11");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->cpus.to_list(), "8,10-11");
}

TEST(PlanPin, EmptySet) {
  for (const auto* text : {"^0,^1", "0,^0", "", " "}) {
    const auto error = plan_error(web_vm(), host("0-1", "0-1"), PinTarget::of_vcpu(0), text);
    EXPECT_NE(error.message.find("leaves no CPU"), std::string::npos) << error.message;
    EXPECT_NE(error.message.find("online CPUs 0-1"), std::string::npos) << error.message;
  }
}

TEST(PlanPin, ResetMeansEveryHostCpu) {
  // virsh sends every host CPU for "r"; the threads can only get the online ones.
  auto plan = pin::plan_pin(web_vm(), host("0-3", "0-2"), PinTarget::of_vcpu(2), "r");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->reset);
  EXPECT_EQ(plan->cpus.to_list(), "0-2");
  EXPECT_EQ(plan->libvirt_cpus.to_list(), "0-3");
}

TEST(PlanPin, MissingVcpuOrIothread) {
  const auto vm = web_vm();
  const auto topology = host("0-1", "0-1");
  EXPECT_EQ(plan_error(vm, topology, PinTarget::of_vcpu(9), "0").message,
            "VM 'web' has no vCPU 9; its vCPUs are 0-3");
  EXPECT_EQ(plan_error(vm, topology, PinTarget::of_iothread("nosuch"), "0").message,
            "VM 'web' has no I/O thread 'nosuch'; its I/O threads are io1");
  auto plan = pin::plan_pin(vm, topology, PinTarget::of_iothread("io1"), "1");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->tids, std::vector<int>{105});
}

TEST(PlanPin, EmulatorCoversEveryEmulatorThread) {
  auto plan = pin::plan_pin(web_vm(), host("0-1", "0-1"), PinTarget::of_emulator(), "0");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto tids = plan->tids;
  std::sort(tids.begin(), tids.end());
  EXPECT_EQ(tids, (std::vector<int>{100, 106, 107}));
}

TEST(PlanPin, InactiveDomainIsCheckedAgainstItsDefinition) {
  const auto vm = inactive_domain();
  const auto topology = host("0-1", "0-1");
  auto plan = pin::plan_pin(vm, topology, PinTarget::of_vcpu(1), "0");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->tids.empty());
  EXPECT_EQ(plan_error(vm, topology, PinTarget::of_vcpu(2), "0").message,
            "VM 'db' has no vCPU 2; its vCPUs are 0-1");
  auto iothread = pin::plan_pin(vm, topology, PinTarget::of_iothread("1"), "1");
  ASSERT_TRUE(iothread.ok()) << iothread.error().message;
  EXPECT_EQ(iothread->libvirt_iothread, 1);
  EXPECT_EQ(plan_error(vm, topology, PinTarget::of_iothread("2"), "1").message,
            "VM 'db' has no I/O thread '2'; its I/O threads are 1");
}

TEST(CheckScope, AsVirsh) {
  using libvirt::Scope;
  const auto plain = web_vm();
  EXPECT_TRUE(pin::check_scope(plain, Scope::current).ok());
  EXPECT_TRUE(pin::check_scope(plain, Scope::live).ok());
  const auto config = pin::check_scope(plain, Scope::config);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("no persistent configuration"), std::string::npos);
  EXPECT_FALSE(pin::check_scope(plain, Scope::live_and_config).ok());

  const auto inactive = inactive_domain();
  EXPECT_TRUE(pin::check_scope(inactive, Scope::config).ok());
  EXPECT_TRUE(pin::check_scope(inactive, Scope::current).ok());
  EXPECT_FALSE(pin::check_scope(inactive, Scope::live).ok());
  // Without a connection a libvirt domain is refused, never pinned behind libvirt's back.
  auto plan = pin::plan_pin(inactive, host("0-1", "0-1"), PinTarget::of_vcpu(0), "0");
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(pin::apply_pin(inactive, *plan, Scope::config, nullptr).ok());
}

// ---- apply_affinity on real threads of this process ----

// A thread that sleeps until stopped, and its kernel tid.
class Sleeper {
 public:
  Sleeper()
      : thread_([this] {
          tid_ = static_cast<int>(::gettid());
          while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }) {
    while (tid_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Sleeper() { stop(); }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;

  int tid() const { return tid_; }
  // Ends the thread and waits until the kernel no longer knows its tid.
  void stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    for (int i = 0; i < 1000 && procfs::read_affinity(tid_).error != ESRCH; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  std::atomic<int> tid_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The CPUs this test may use, and one of them to pin to; skips with fewer than 2.
struct Cpus {
  CpuSet allowed;
  CpuSet one;
};

Cpus test_cpus() {
  const auto allowed = procfs::read_affinity(static_cast<int>(::gettid()));
  Cpus out{allowed.cpus, {}};
  if (allowed.error == 0 && allowed.cpus.count() >= 2) out.one.add(allowed.cpus.cpus().front());
  return out;
}

TEST(ApplyAffinity, PinsEveryThread) {
  const auto cpus = test_cpus();
  if (cpus.one.empty()) GTEST_SKIP() << "needs 2 CPUs this process may run on";
  Sleeper first;
  Sleeper second;
  ASSERT_TRUE(pin::apply_affinity({first.tid(), second.tid()}, cpus.one).ok());
  EXPECT_EQ(procfs::read_affinity(first.tid()).cpus, cpus.one);
  EXPECT_EQ(procfs::read_affinity(second.tid()).cpus, cpus.one);
}

TEST(ApplyAffinity, ThreadExitingPartWayUndoesTheFirst) {
  const auto cpus = test_cpus();
  if (cpus.one.empty()) GTEST_SKIP() << "needs 2 CPUs this process may run on";
  Sleeper first;
  Sleeper second;
  const int gone = second.tid();
  // The second thread exits after its old affinity was read and the first was changed: the
  // kernel's own ESRCH, then the first thread must get its old affinity back.
  pin::AffinityCalls calls;
  calls.write = [&](int tid, const CpuSet& set) {
    if (tid == gone) second.stop();
    return procfs::write_affinity(tid, set);
  };
  const auto status = pin::apply_affinity({first.tid(), gone}, cpus.one, calls);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find(fmt::format("thread {} exited", gone)), std::string::npos)
      << status.error().message;
  EXPECT_NE(status.error().message.find("nothing was changed"), std::string::npos);
  EXPECT_EQ(procfs::read_affinity(first.tid()).cpus, cpus.allowed);
}

TEST(ApplyAffinity, PermissionDeniedSaysRunAsRoot) {
  const auto cpus = test_cpus();
  if (cpus.one.empty()) GTEST_SKIP() << "needs 2 CPUs this process may run on";
  Sleeper first;
  Sleeper second;
  pin::AffinityCalls calls;
  calls.write = [&](int tid, const CpuSet& set) {
    return tid == second.tid() ? EPERM : procfs::write_affinity(tid, set);
  };
  const auto status = pin::apply_affinity({first.tid(), second.tid()}, cpus.one, calls);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("run as root"), std::string::npos);
  EXPECT_EQ(procfs::read_affinity(first.tid()).cpus, cpus.allowed);
  EXPECT_EQ(procfs::read_affinity(second.tid()).cpus, cpus.allowed);
}

TEST(ApplyAffinity, ExitedThreadChangesNothing) {
  const auto cpus = test_cpus();
  if (cpus.one.empty()) GTEST_SKIP() << "needs 2 CPUs this process may run on";
  Sleeper first;
  Sleeper exited;
  exited.stop();
  const auto status = pin::apply_affinity({first.tid(), exited.tid()}, cpus.one);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("the VM changed while pinning"), std::string::npos);
  EXPECT_EQ(procfs::read_affinity(first.tid()).cpus, cpus.allowed);
}

// ---- the pin tables ----

TEST(PinView, ThreadAffinityInVirshLayout) {
  const auto vm = web_vm();
  const auto topology = host("0-1", "0-1");
  // A VM libvirt doesn't manage shows its threads' live affinity, in virsh's layout.
  EXPECT_EQ(views::render_vcpupin_rows(views::vcpupin_rows(vm, topology)),
            " VCPU   CPU Affinity\n----------------------\n 0      0-1\n 1      0-1\n"
            " 2      0-1\n 3      0-1\n\n");
  EXPECT_EQ(views::render_iothreadinfo_rows(views::iothreadinfo_rows(vm)),
            " IOThread ID   CPU Affinity\n-----------------------------\n io1           0-1\n\n");
}

TEST(PinView, InactiveDomainShowsItsDefinition) {
  const auto vm = inactive_domain();
  const auto topology = host("0-1", "0-1");
  // Unpinned vCPUs show every online CPU, as libvirt does.
  EXPECT_EQ(views::render_vcpupin_rows(views::vcpupin_rows(vm, topology)),
            " VCPU   CPU Affinity\n----------------------\n 0      1\n 1      0-1\n\n");
  EXPECT_EQ(views::render_emulatorpin_cpus(views::emulatorpin_cpus(vm, topology)),
            "emulator: CPU Affinity\n----------------------------------\n       *: 0-1\n\n");
  EXPECT_EQ(views::render_iothreadinfo_rows(views::iothreadinfo_rows(vm)),
            " IOThread ID   CPU Affinity\n-----------------------------\n 1             0\n\n");
  const auto json = views::pin_rows_json(views::vcpupin_rows(vm, topology), false);
  EXPECT_TRUE(json[0]["tid"].is_null());
  EXPECT_EQ(json[0]["affinity"], nlohmann::json::array({1}));
}

}  // namespace
}  // namespace vcpumap
