#include <gtest/gtest.h>

#include "core/identify.h"

namespace vcpumap {
namespace {

TEST(IdentifyVm, QemuNameForms) {
  auto vm = identify_vm({"/usr/bin/qemu-system-x86_64", "-name",
                         "guest=instance-00000001,debug-threads=on", "-uuid",
                         "ecdd5b09-39f9-4bfa-953a-4bce8e76424e"});
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->hypervisor, Hypervisor::qemu);
  EXPECT_EQ(vm->name, "instance-00000001");
  EXPECT_EQ(vm->uuid, "ecdd5b09-39f9-4bfa-953a-4bce8e76424e");
  EXPECT_TRUE(vm->debug_threads);

  vm = identify_vm({"qemu-system-aarch64", "--name", "plain,process=p"});
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->name, "plain");
  EXPECT_FALSE(vm->debug_threads);

  vm = identify_vm({"qemu-kvm", "-name", "guest=a,,b"});  // ",," is a literal comma
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->name, "a,b");
}

TEST(IdentifyVm, OtherHypervisors) {
  auto vm = identify_vm({"/usr/local/bin/firecracker", "--id", "fc-7", "--api-sock", "/x"});
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->hypervisor, Hypervisor::firecracker);
  EXPECT_EQ(vm->name, "fc-7");
  EXPECT_EQ(identify_vm({"cloud-hypervisor", "--cpus", "boot=2"})->hypervisor,
            Hypervisor::cloud_hypervisor);
  EXPECT_EQ(identify_vm({"crosvm", "run"})->hypervisor, Hypervisor::crosvm);
  EXPECT_FALSE(identify_vm({"bash"}));
  EXPECT_FALSE(identify_vm({}));
  EXPECT_FALSE(identify_vm({"qemu-img", "info"}));
}

TEST(ClassifyThread, ExactNamesOnly) {
  EXPECT_EQ(classify_thread(Hypervisor::qemu, "CPU 3/KVM", 10, 1).vcpu, 3);
  EXPECT_EQ(classify_thread(Hypervisor::qemu, "CPU 12/TCG", 10, 1).role, ThreadRole::vcpu);
  for (const char* name : {"CPU 0/KVM\n", " CPU 0/KVM", "CPU 0/KVMx", "CPU -1/KVM", "CPU 01/KVM",
                           "CPU /KVM", "CPU 0/XYZ", "cpu 0/KVM"}) {
    EXPECT_NE(classify_thread(Hypervisor::qemu, name, 10, 1).role, ThreadRole::vcpu) << name;
  }
  auto io = classify_thread(Hypervisor::qemu, "IO iothread1", 10, 1);
  EXPECT_EQ(io.role, ThreadRole::iothread);
  EXPECT_EQ(io.iothread, "iothread1");
  EXPECT_EQ(classify_thread(Hypervisor::qemu, "IO mon_iothread", 10, 1).role,
            ThreadRole::emulator_monitor);
  EXPECT_EQ(classify_thread(Hypervisor::qemu, "qemu-system-x86", 1, 1).role,
            ThreadRole::emulator_main);
  EXPECT_EQ(classify_thread(Hypervisor::qemu, "call_rcu", 2, 1).role, ThreadRole::emulator_other);
  EXPECT_EQ(classify_thread(Hypervisor::qemu, "vhost-1", 3, 1).role, ThreadRole::vhost);
  EXPECT_EQ(classify_thread(Hypervisor::qemu, "vhost-2", 3, 1).role, ThreadRole::emulator_other);
  EXPECT_EQ(classify_thread(Hypervisor::firecracker, "fc_vcpu 1", 3, 1).vcpu, 1);
  EXPECT_EQ(classify_thread(Hypervisor::cloud_hypervisor, "vcpu7", 3, 1).vcpu, 7);
  EXPECT_EQ(classify_thread(Hypervisor::crosvm, "crosvm_vcpu2", 3, 1).vcpu, 2);
  EXPECT_NE(classify_thread(Hypervisor::firecracker, "CPU 0/KVM", 3, 1).role, ThreadRole::vcpu);
}

}  // namespace
}  // namespace vcpumap
