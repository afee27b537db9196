// Fuzz target for every parser of outside text (/proc files, cmdlines, CPU lists, libvirt status
// XML, QMP replies). LLVMFuzzerTestOneInput works with libFuzzer (clang -fsanitize=fuzzer); the
// main() below, used when built with g++, feeds it seeded, mutated inputs for --runs rounds.
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "core/identify.h"
#include "sources/libvirt/status_file.h"
#include "sources/procfs/parse.h"
#include "sources/qmp/qmp.h"
#include "util/cpuset.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vcpumap;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto stat = procfs::parse_stat(text)) {
    // A parsed stat must keep the invariants the views rely on.
    if (stat->processor < -1) __builtin_trap();
  }
  (void)procfs::parse_schedstat(text);
  (void)procfs::parse_sched(text);
  (void)procfs::parse_status_affinity(text);
  const auto argv = procfs::parse_cmdline(text);
  (void)identify_vm(argv);
  (void)classify_thread(Hypervisor::qemu, text, 1, 1);
  if (auto set = CpuSet::parse_virsh_list(text)) {
    // Printing and re-parsing a set gives the same set.
    auto again = CpuSet::parse_list(set->to_list());
    if (!again || !(*again == *set)) __builtin_trap();
  }
  (void)CpuSet::parse_mask(text);
  (void)libvirt::parse_status_xml(text);
  (void)qmp::parse_query_cpus_fast(text);
  return 0;
}

#ifndef VCPUMAP_LIBFUZZER
namespace {

const std::vector<std::string> kSeeds = {
    "4212 (cat) R 4000 4212 4000 34816 4212 4194304 96 0 0 0 0 0 0 0 20 0 1 0 8380034 5812224 "
    "224 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
    "77 (CPU 0/KVM) S 1 77 1 0 -1 4194560 0 0 0 0 3000 279 0 0 20 0 4 0 500 0 0 "
    "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 -1 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
    "9 (a) b) c (d) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 "
    "28 29 30 31 32 33 34 35 36 37 38 39 40\n",
    "46272816 5423298 106\n",
    "se.nr_migrations                             :                    1\n"
    "nr_voluntary_switches                        :                    0\n",
    "Name:\tqemu\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n",
    std::string("qemu-system-x86_64\0-name\0guest=demo,debug-threads=on\0-uuid\0abc\0", 62),
    "0-3,^2,8",
    "ff,00000003",
    "<domstatus state='running' pid='5'><vcpus><vcpu id='0' pid='7'/></vcpus></domstatus>",
    R"({"return": [{"cpu-index": 0, "thread-id": 77, "qom-path": "/machine/unattached/device[0]"}]})",
};

std::string mutate(std::string input, std::mt19937_64& random) {
  const auto rounds = 1 + random() % 8;
  for (std::size_t i = 0; i < rounds; ++i) {
    const auto choice = random() % 4;
    const auto at = input.empty() ? 0 : random() % (input.size() + 1);
    const char byte = static_cast<char>(random() % 4 == 0 ? "() ,-^\n\0"[random() % 8] : random());
    if (choice == 0 && !input.empty() && at < input.size()) {
      input[at] = byte;
    } else if (choice == 1) {
      input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), byte);
    } else if (choice == 2 && at < input.size()) {
      input.erase(at, 1 + random() % 8);
    } else {
      input.resize(at);
    }
  }
  return input;
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 100000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::stol(argv[i + 1]);
  }
  std::mt19937_64 random(12345);
  for (long run = 0; run < runs; ++run) {
    const auto input = mutate(kSeeds[run % kSeeds.size()], random);
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  }
  fmt::print("fuzz_procfs: {} inputs, no crash\n", runs);
  return 0;
}
#endif
