#include "audit_fixture.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "audit/audit.h"
#include "collect/snapshot.h"

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

std::vector<audit::Finding> findings_of(const AuditMachine& machine, const std::string& rule) {
  audit::GatherOptions options;
  options.snapshot = options_for_root(machine.root());
  auto input = audit::look(options);
  EXPECT_TRUE(input) << input.error().message;
  std::vector<audit::Finding> kept;
  if (!input) return kept;
  for (auto& finding : audit::run_rules(*input)) {
    if (finding.rule == rule) kept.push_back(std::move(finding));
  }
  return kept;
}

}  // namespace vcpumap::testing
