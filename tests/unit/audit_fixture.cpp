#include "audit_fixture.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "audit/audit.h"
#include "collect/snapshot.h"
#include "views/audit_view.h"

namespace vcpumap::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kSharedTopology = fs::path(VCPUMAP_SHARED_FIXTURES) / "topology";

// tmpfs when it can: a capture unpacks to thousands of small files.
fs::path unpack_base() {
  std::error_code error;
  if (std::getenv("TMPDIR") == nullptr && fs::is_directory("/dev/shm", error) &&
      ::access("/dev/shm", W_OK) == 0) {
    return "/dev/shm";
  }
  return fs::temp_directory_path();
}

std::string stat_line(const AuditThread& t) {
  // proc(5) fields 1..52: 3 state, 14/15 utime/stime, 22 starttime, 39 processor.
  return fmt::format(
      "{} ({}) {} 1 {} {} 0 -1 4194368 100 0 0 0 10 5 0 0 20 0 4 0 1000 1048576 300 "
      "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 {} 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
      t.tid, t.name, t.state, t.tid, t.tid, t.cpu);
}

}  // namespace

AuditMachine::AuditMachine(const std::string& archive) {
  std::string pattern = (unpack_base() / "vcpumap-audit-XXXXXX").string();
  temp_ = ::mkdtemp(pattern.data());
  if (archive.empty()) {
    root_ = temp_ / "root";
    fs::copy(fs::path(VCPUMAP_FIXTURES) / "topology-2cpu-vm", root_, fs::copy_options::recursive);
  } else {
    const auto command =
        fmt::format("tar xjf '{}' -C '{}'", (kSharedTopology / (archive + ".tar.bz2")).string(),
                    temp_.string());
    if (std::system(command.c_str()) != 0) throw std::runtime_error(command + " failed");
    for (const auto& entry : fs::directory_iterator(temp_)) root_ = entry.path();
  }
  fs::create_directories(root_ / "proc");
}

AuditMachine::~AuditMachine() {
  std::error_code ignored;
  fs::remove_all(temp_, ignored);
}

bool AuditMachine::shared_captures_present() {
  return fs::is_directory(kSharedTopology);
}

void AuditMachine::write(const std::string& relative, std::string_view content) {
  const auto path = root_ / relative;
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void AuditMachine::add_qemu(int pid, const std::string& name,
                            const std::vector<AuditThread>& threads) {
  const auto dir = fmt::format("proc/{}", pid);
  using namespace std::string_literals;
  write(dir + "/cmdline", "qemu-system-x86_64\0-name\0guest="s + name + ",debug-threads=on\0"s);
  if (!threads.empty()) write(dir + "/stat", stat_line(threads.front()));
  for (const auto& t : threads) {
    const auto task = fmt::format("{}/task/{}", dir, t.tid);
    write(task + "/stat", stat_line(t));
    write(task + "/status", fmt::format("Name:\t{}\nState:\t{}\nCpus_allowed_list:\t{}\n", t.name,
                                        t.state, t.affinity));
    write(task + "/schedstat", fmt::format("{} 0 42\n", t.cpu_time_ns));
    write(task + "/cgroup", t.cgroup);
  }
}

// A QEMU guest: main thread with `emulator` affinity, then one vCPU per entry of `vcpus`.
std::vector<AuditThread> guest(int pid, const std::string& emulator,
                               const std::vector<std::string>& vcpus) {
  std::vector<AuditThread> threads{{.tid = pid, .name = "qemu-system-x86", .affinity = emulator}};
  for (std::size_t i = 0; i < vcpus.size(); ++i) {
    threads.push_back({.tid = pid + 1 + static_cast<int>(i),
                       .name = fmt::format("CPU {}/KVM", i),
                       .affinity = vcpus[i]});
  }
  return threads;
}

audit::AuditInput look(const AuditMachine& machine) {
  audit::GatherOptions options;
  options.snapshot = options_for_root(machine.root());
  auto input = audit::look(options);
  EXPECT_TRUE(input.ok()) << (input.ok() ? "" : input.error().message);
  return std::move(input.value());
}

namespace {

Vm& vm_named(audit::AuditInput& input, const std::string& name) {
  for (auto& vm : input.snapshot.vms) {
    if (vm.name == name) return vm;
  }
  throw std::runtime_error("no VM " + name);
}

}  // namespace

// Makes a VM a libvirt domain with this configured pinning (as virsh vcpupin shows it).
void configure(audit::AuditInput& input, const std::string& name,
               const std::vector<std::string>& vcpu_pins, const std::string& emulator_pin,
               const std::string& cpu_policy, const std::string& emulator_policy) {
  auto& vm = vm_named(input, name);
  LibvirtDomain domain;
  domain.name = name;
  domain.active = true;
  domain.pid = vm.pid;
  domain.vcpus = static_cast<int>(vcpu_pins.size());
  for (const auto& pin : vcpu_pins) domain.vcpu_pins.push_back(*CpuSet::parse_list(pin));
  domain.emulator_pin = *CpuSet::parse_list(emulator_pin);
  if (!cpu_policy.empty()) {
    domain.nova = NovaInstance{"inst", "flavor", "project", cpu_policy, emulator_policy};
  }
  vm.libvirt = std::move(domain);
}

std::vector<audit::Finding> with_rule(const std::vector<audit::Finding>& findings,
                                      const std::string& rule) {
  std::vector<audit::Finding> kept;
  for (const auto& finding : findings) {
    if (finding.rule == rule) kept.push_back(finding);
  }
  return kept;
}

std::string all_text(const std::vector<audit::Finding>& findings) {
  return views::render_audit(findings, 2, std::chrono::milliseconds(0));
}

std::vector<audit::Finding> findings_of(const AuditMachine& machine, const std::string& rule) {
  return with_rule(audit::run_rules(look(machine)), rule);
}

}  // namespace vcpumap::testing
