// The BPF records' raw kernel values turned into TaskRecord and ProcessRecord: apart from the
// walking, so the conversions are tested on records made up to reach every path (a mask wider
// than the record's 256 CPUs cannot happen on the test machine).
#pragma once

#include <cstdint>

#include "sources/bpf/records.h"
#include "sources/bpf/task_reader.h"

namespace vcpumap::bpf {

class RecordConverter {
 public:
  RecordConverter();

  // `raw` into `record` (its storage reused); false when the thread has gone meanwhile (its
  // affinity had to be asked with sched_getaffinity, which then failed).
  bool convert(const vcpumap_task_record& raw, bool has_sched_info, TaskRecord& record);
  // `raw` as a ProcessRecord.
  ProcessRecord process(const vcpumap_process_record& raw) const;

 private:
  std::uint64_t ns_per_tick_;  // nsec_to_clock_t()'s divisor: 10^9 / USER_HZ
  std::uint64_t last_mask_[VCPUMAP_MASK_WORDS] = {};
  CpuSet last_affinity_;
};

}  // namespace vcpumap::bpf
