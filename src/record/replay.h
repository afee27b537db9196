// The replay engine of the sched-event source: a recording's events given back as the live
// engines give them (tids, both sides of each switch), so what reads an EventSource runs the same
// way on a file as on the kernel's stream. Times are ns since the recording's start.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "record/file.h"
#include "sources/event_source.h"

namespace vcpumap::record {

class ReplaySource final : public EventSource {
 public:
  // Opens a recording; the error says why it can't be read.
  static Result<std::unique_ptr<ReplaySource>> open(const std::filesystem::path& path);
  // Replays blocks already read (tests, and bytes held in memory).
  explicit ReplaySource(std::vector<Block> blocks);

  std::string_view name() const override { return "replay"; }
  // A recording holds only the processes watched when it was made: nothing to choose.
  Status watch_processes(std::span<const int>) override { return Ok{}; }
  Status enable() override { return Ok{}; }
  // Never waits: the file's events are all there.
  Result<bool> wait(int, int) override { return false; }
  // The events of the next block (none for a block of another kind): a thread's identity is known
  // after the drain that read it, before the drain that gives its first event.
  void drain(std::vector<SchedEvent>& out) override;

  // True once every block was read.
  bool done() const { return done_; }
  // The recorded threads seen so far, in the order first seen.
  const std::vector<ThreadIdentity>& threads() const { return threads_; }
  // A recorded VM by key, or nullptr.
  const VmIdentity* vm(std::uint32_t key) const;

 private:
  ReplaySource() = default;
  std::optional<Block> next_block();
  void replay(const EventBlock& block, std::vector<SchedEvent>& out);
  void flush_switch_out(std::vector<SchedEvent>& out);
  SchedTaskInfo info_of(std::uint32_t key) const;
  int tid_of(std::uint32_t key) const;

  std::optional<RecordingReader> reader_;
  std::vector<Block> blocks_;  // when replaying blocks in memory
  std::size_t next_ = 0;
  bool done_ = false;
  std::vector<ThreadIdentity> threads_;
  std::map<std::uint32_t, std::size_t> thread_index_;  // key -> index into threads_
  std::map<std::uint32_t, VmIdentity> vms_;
  std::map<int, std::pair<int, SchedTaskInfo>> running_;  // by CPU: the last task switched in
  std::optional<SchedEvent> switch_out_;                  // a switch-out whose switch-in may follow
};

}  // namespace vcpumap::record
