#include "record/replay.h"

namespace vcpumap::record {
namespace {

// sched_switch's prev_state for a recorded state letter (the inverse of the recorder's).
std::int64_t prev_state_of(char state) {
  static constexpr std::string_view kLetters = "SDTtXZP";
  const auto bit = kLetters.find(state);
  return bit == std::string_view::npos ? 0 : std::int64_t{1} << bit;
}

SchedTaskInfo peer_info(const Peer& peer) {
  return {peer.tgid, peer.comm, peer.cgroup, peer.kernel_thread};
}

}  // namespace

Result<std::unique_ptr<ReplaySource>> ReplaySource::open(const std::filesystem::path& path) {
  auto reader = RecordingReader::open(path);
  if (!reader) return reader.error();
  std::unique_ptr<ReplaySource> source(new ReplaySource());
  source->reader_.emplace(std::move(*reader));
  return source;
}

ReplaySource::ReplaySource(std::vector<Block> blocks) : blocks_(std::move(blocks)) {}

const VmIdentity* ReplaySource::vm(std::uint32_t key) const {
  const auto found = vms_.find(key);
  return found == vms_.end() ? nullptr : &found->second;
}

int ReplaySource::tid_of(std::uint32_t key) const {
  const auto found = thread_index_.find(key);
  return found == thread_index_.end() ? 0 : threads_[found->second].tid;
}

SchedTaskInfo ReplaySource::info_of(std::uint32_t key) const {
  SchedTaskInfo info;
  const auto found = thread_index_.find(key);
  if (found == thread_index_.end()) return info;
  const ThreadIdentity& thread = threads_[found->second];
  info.comm = thread.name;
  if (const VmIdentity* owner = vm(thread.vm_key)) info.tgid = owner->pid;
  return info;
}

std::optional<Block> ReplaySource::next_block() {
  if (reader_) return reader_->next();
  if (next_ < blocks_.size()) return blocks_[next_++];
  return std::nullopt;
}

void ReplaySource::flush_switch_out(std::vector<SchedEvent>& out) {
  if (!switch_out_) return;
  running_[switch_out_->cpu] = {switch_out_->next_pid, switch_out_->next};
  out.push_back(std::move(*switch_out_));
  switch_out_.reset();
}

void ReplaySource::replay(const EventBlock& block, std::vector<SchedEvent>& out) {
  for (const Event& event : block.events) {
    SchedEvent sched;
    sched.time_ns = event.time_ns;
    sched.cpu = event.cpu;
    // The recorder writes one switch between two recorded threads as a switch-out and a
    // switch-in at one time on one CPU: they are one switch again here.
    if (event.kind == EventKind::switch_in && switch_out_ && switch_out_->cpu == event.cpu &&
        switch_out_->time_ns == event.time_ns && switch_out_->next_pid == tid_of(event.key)) {
      switch_out_->next = info_of(event.key);
      flush_switch_out(out);
      continue;
    }
    flush_switch_out(out);
    switch (event.kind) {
      case EventKind::switch_out:
        sched.kind = SchedEvent::Kind::sched_switch;
        sched.prev_pid = tid_of(event.key);
        sched.prev = info_of(event.key);
        sched.prev_state = prev_state_of(event.state);
        sched.next_pid = event.peer.tid;
        sched.next = peer_info(event.peer);
        switch_out_ = std::move(sched);
        continue;
      case EventKind::switch_in:
        sched.kind = SchedEvent::Kind::sched_switch;
        sched.prev_pid = event.peer.tid;
        sched.prev = peer_info(event.peer);
        sched.next_pid = tid_of(event.key);
        sched.next = info_of(event.key);
        break;
      case EventKind::cpu_switch: {
        // Only who runs now is recorded: who ran before is the last task switched in there.
        sched.kind = SchedEvent::Kind::sched_switch;
        const auto before = running_.find(event.cpu);
        if (before != running_.end()) {
          sched.prev_pid = before->second.first;
          sched.prev = before->second.second;
        }
        sched.next_pid = event.peer.tid;
        sched.next = peer_info(event.peer);
        break;
      }
      case EventKind::migrate:
        sched.kind = SchedEvent::Kind::migrate;
        sched.pid = tid_of(event.key);
        sched.orig_cpu = event.orig_cpu;
        sched.dest_cpu = event.cpu;
        break;
      case EventKind::wakeup:
        sched.kind = SchedEvent::Kind::wakeup;
        sched.pid = tid_of(event.key);
        sched.target_cpu = event.cpu;
        break;
      case EventKind::lost:
        sched.kind = SchedEvent::Kind::lost;
        sched.lost = event.lost;
        break;
    }
    if (sched.kind == SchedEvent::Kind::sched_switch)
      running_[sched.cpu] = {sched.next_pid, sched.next};
    out.push_back(std::move(sched));
  }
  flush_switch_out(out);
}

void ReplaySource::drain(std::vector<SchedEvent>& out) {
  auto block = next_block();
  if (!block) {
    done_ = true;
    return;
  }
  if (const auto* identity = std::get_if<IdentityBlock>(&*block)) {
    for (const VmIdentity& vm : identity->vms) vms_[vm.key] = vm;
    for (const ThreadIdentity& thread : identity->threads) {
      thread_index_[thread.key] = threads_.size();
      threads_.push_back(thread);
    }
  }
  if (const auto* events = std::get_if<EventBlock>(&*block)) replay(*events, out);
}

}  // namespace vcpumap::record
