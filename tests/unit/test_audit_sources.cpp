// The readers the audit adds: a thread's cgroup cpuset (v1 and v2, hybrid hosts) and numa_maps.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "audit_fixture.h"
#include "sources/procfs/cgroup.h"
#include "sources/procfs/numa_maps.h"

namespace vcpumap {
namespace {

using testing::AuditMachine;

TEST(CgroupMembership, ParsesHybridHosts) {
  const auto membership = procfs::parse_cgroup_membership(
      "9:name=systemd:/\n4:memory:/process_api/1e2d\n3:cpuset:/machine/qemu-1-web.libvirt-qemu/"
      "vcpu0\n0::/machine.slice/a:b\n");
  EXPECT_EQ(membership.cpuset_v1, "/machine/qemu-1-web.libvirt-qemu/vcpu0");
  EXPECT_EQ(membership.cpuset_v1_controllers, "cpuset");
  EXPECT_EQ(membership.unified, "/machine.slice/a:b");  // a path may hold ':'
}

TEST(CgroupMembership, JointControllerLists) {
  const auto membership = procfs::parse_cgroup_membership("5:cpu,cpuset,cpuacct:/x\n");
  EXPECT_EQ(membership.cpuset_v1, "/x");
  EXPECT_EQ(membership.cpuset_v1_controllers, "cpu,cpuset,cpuacct");
  EXPECT_FALSE(membership.unified.has_value());
}

TEST(CgroupReader, V1CpusetPrefersTheEffectiveList) {
  AuditMachine machine("");
  machine.write("proc/10/task/11/cgroup", "3:cpuset:/machine/vcpu0\n0::/\n");
  machine.write("sys/fs/cgroup/cpuset/machine/vcpu0/cpuset.cpus", "0-1\n");
  machine.write("sys/fs/cgroup/cpuset/machine/vcpu0/cpuset.effective_cpus", "1\n");
  const auto cpuset = procfs::CgroupReader(machine.root()).thread_cpuset(10, 11);
  ASSERT_TRUE(cpuset.has_value());
  EXPECT_EQ(cpuset->version, 1);
  EXPECT_EQ(cpuset->cpus.to_list(), "1");
}

TEST(CgroupReader, V2WalksUpToTheCgroupThatHasCpuset) {
  AuditMachine machine("");
  machine.write("proc/10/task/11/cgroup", "0::/machine.slice/vm.scope/vcpu0\n");
  // Hybrid layout: v2 under unified/. vcpu0 has no cpuset controller enabled.
  machine.write("sys/fs/cgroup/unified/machine.slice/vm.scope/vcpu0/cgroup.procs", "");
  machine.write("sys/fs/cgroup/unified/machine.slice/vm.scope/cpuset.cpus.effective", "0\n");
  const auto cpuset = procfs::CgroupReader(machine.root()).thread_cpuset(10, 11);
  ASSERT_TRUE(cpuset.has_value());
  EXPECT_EQ(cpuset->version, 2);
  EXPECT_EQ(cpuset->cpus.to_list(), "0");
}

TEST(CgroupReader, NoCpusetControllerAnywhere) {
  AuditMachine machine("");
  machine.write("proc/10/task/11/cgroup", "0::/\n");
  machine.write("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
  EXPECT_FALSE(procfs::CgroupReader(machine.root()).thread_cpuset(10, 11).has_value());
  EXPECT_FALSE(procfs::CgroupReader(machine.root()).thread_cpuset(10, 12).has_value());
}

TEST(CgroupReader, CgroupIdIsTheInodeOfItsDirectoryAsBpfGivesIt) {
  AuditMachine machine("");
  machine.write("sys/fs/cgroup/unified/machine.slice/vm.scope/cgroup.procs", "");
  struct stat info {};
  ASSERT_EQ(
      ::stat((machine.root() / "sys/fs/cgroup/unified/machine.slice/vm.scope").c_str(), &info), 0);
  const procfs::CgroupReader reader(machine.root());
  EXPECT_EQ(reader.cgroup_id(procfs::parse_cgroup_membership("0::/machine.slice/vm.scope\n")),
            info.st_ino);
  EXPECT_FALSE(reader.cgroup_id(procfs::parse_cgroup_membership("0::/gone\n")).has_value());
  EXPECT_FALSE(reader.cgroup_id(procfs::parse_cgroup_membership("3:cpuset:/\n")).has_value());
}

TEST(NumaMaps, SumsKibPerNodeWeightedByPageSize) {
  const auto memory = procfs::parse_numa_maps(
      "55ab29715000 default file=/usr/bin/qemu-system-x86_64 mapped=315 mapmax=3 N0=315 "
      "kernelpagesize_kB=4\n"
      "7f0000000000 bind:1 file=/dev/hugepages/x huge dirty=3 N1=2 N0=1 kernelpagesize_kB=2048\n"
      "7ffd0000 default stack anon=3 dirty=3 N0=3 kernelpagesize_kB=4\n"
      "7ffe0000 default Nx=5 N=3 N2=oops\n");
  EXPECT_EQ(memory.size(), 2U);
  EXPECT_EQ(memory.at(0), 315U * 4 + 2048 + 3 * 4);
  EXPECT_EQ(memory.at(1), 2U * 2048);
}

}  // namespace
}  // namespace vcpumap
