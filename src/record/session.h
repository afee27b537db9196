// Internal to the recorder: the state both modes share (the file, thread keys, buffered
// samples and events) and how a block gets flushed.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <tuple>
#include <unordered_map>

#include "collect/sampler.h"
#include "record/file.h"
#include "record/recorder.h"
#include "sources/event_source.h"

namespace vcpumap::record {

class Session {
 public:
  Session(const RecordOptions& options, RecordingWriter writer)
      : options_(options), writer_(std::move(writer)) {}

  // Picks the VMs from the first sample, writes the host block and that sample.
  Status start(const Sample& first);
  // Adds a sample (keys new threads, refreshes the tid map).
  void add_sample(const Sample& sample);
  // Adds one event (already keyed, time relative to the start).
  void add_event(const Event& event);
  // Writes buffered identities, samples and events as blocks.
  Status flush();
  // Flushes and writes the end block.
  Status finish(const std::string& reason);

  // ns since the start for a steady_clock time (or a CLOCK_MONOTONIC ns count).
  std::int64_t since_start(std::chrono::steady_clock::time_point time) const {
    return (time - start_mono_).count();
  }
  std::int64_t since_start_ns(std::uint64_t monotonic_ns) const {
    return static_cast<std::int64_t>(monotonic_ns) -
           std::chrono::duration_cast<std::chrono::nanoseconds>(start_mono_.time_since_epoch())
               .count();
  }
  // The key of a recorded thread by tid, or nullptr when the tid is not one of the VMs'.
  const std::uint32_t* key_of(int tid) const {
    auto it = tid_keys_.find(tid);
    return it == tid_keys_.end() ? nullptr : &it->second;
  }
  RecordProgress progress() const;
  std::uint64_t buffered_events() const { return events_.events.size(); }
  std::chrono::steady_clock::time_point start_time() const { return start_mono_; }

 private:
  bool wanted(const Vm& vm) const;

  const RecordOptions& options_;
  RecordingWriter writer_;
  std::chrono::steady_clock::time_point start_mono_;
  std::vector<int> chosen_pids_;                                              // when VMs were named
  std::map<int, std::uint32_t> vm_keys_;                                      // by pid
  std::map<std::tuple<int, int, std::uint64_t>, std::uint32_t> thread_keys_;  // pid, tid, start
  std::unordered_map<int, std::uint32_t> tid_keys_;  // threads alive at the last sample
  IdentityBlock identity_;
  SampleBlock samples_;
  EventBlock events_;
  std::uint64_t sample_count_ = 0, event_count_ = 0, lost_ = 0;
  std::int64_t last_time_ns_ = 0;
  int vcpus_ = 0;
};

// The exact-mode loop (recorder_exact.cpp).
// The pids of the snapshot's running VMs: the processes whose events exact mode keeps.
std::vector<int> vm_pids(const Snapshot& snapshot);

Status record_exact(const RecordOptions& options, Session& session, Sampler& sampler,
                    EventSource& tracer, int stop_fd, const ProgressCallback& progress,
                    std::string& reason);

}  // namespace vcpumap::record
