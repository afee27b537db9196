// `vcpumap record`: samples (through the Sampler) or traces (through the sched tracepoints) the
// threads of every VM, or of the VMs named, into a recording file, block by block, so memory
// stays bounded however long it runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "collect/snapshot.h"
#include "record/recording.h"
#include "util/result.h"

namespace vcpumap::record {

struct RecordOptions {
  SnapshotOptions snapshot;
  std::filesystem::path output = "vcpumap.rec";
  std::optional<std::chrono::nanoseconds> duration;  // none: until stopped
  std::chrono::nanoseconds interval = std::chrono::milliseconds(100);
  Mode mode = Mode::sampled;
  std::vector<std::string> vms;  // empty: every VM, also those started while recording
  std::string tool_version;
};

// Where a recording stands, for the progress line.
struct RecordProgress {
  double elapsed_s = 0;
  std::uint64_t samples = 0;
  std::uint64_t events = 0;
  std::uint64_t lost_events = 0;
  std::uint64_t bytes = 0;
  int vcpus = 0;       // vCPU threads being recorded
  std::string reason;  // at the end: why it stopped
  // Exact mode: the engine of the sched events ("bpf" or "perf"), and why not bpf when perf.
  std::string event_source;
  std::string event_source_note;
};

using ProgressCallback = std::function<void(const RecordProgress&)>;

// Records until the duration ends or `stop_fd` (a signalfd, or -1) becomes readable. Calls
// `progress` about once a second and once at the end. The file is closed with an end block
// in every case it can be.
Result<RecordProgress> run_recording(const RecordOptions& options, int stop_fd,
                                     const ProgressCallback& progress);

}  // namespace vcpumap::record
