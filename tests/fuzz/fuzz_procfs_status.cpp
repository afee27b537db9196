// /proc/PID/task/TID/status (procfs::parse_status_affinity, procfs::parse_status_nspid): the
// Cpus_allowed_list line and the NSpid line's innermost id.
#include "fuzz.h"
#include "sources/procfs/parse.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  if (const auto id = procfs::parse_status_nspid(text)) {
    // A pid the text holds, within PID_MAX_LIMIT; written as the innermost of two, read back.
    FUZZ_CHECK(*id >= 1 && *id <= 1 << 22);
    FUZZ_CHECK(*id <= fuzz::largest_number(text));
    FUZZ_CHECK(procfs::parse_status_nspid("Tgid:\t7\nNSpid:\t9\t" + std::to_string(*id) + "\n") ==
               *id);
  }
  const auto affinity = procfs::parse_status_affinity(text);
  if (!affinity) return 0;
  // Bounds: no CPU above the largest number the text holds, none beyond the parser's limit.
  FUZZ_CHECK(affinity->end() <= CpuSet::kMaxCpu);
  FUZZ_CHECK(affinity->empty() || affinity->end() - 1 <= fuzz::largest_number(text));
  // Round trip: a status file with the set's list gives the set.
  const auto again =
      procfs::parse_status_affinity("Name:\tqemu\nCpus_allowed:\tff\nCpus_allowed_list:\t" +
                                    affinity->to_list() + "\nMems_allowed:\t1\n");
  FUZZ_CHECK(again.ok() && *again == *affinity);
  return 0;
}
