#include "sources/bpf/event_ring.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sources/bpf/event_decode.h"
#include "sources/bpf/loaders.h"
#include "sources/bpf/task_reader.h"

namespace vcpumap::bpf {

struct EventRing::Programs {
  Programs() = default;
  Programs(const Programs&) = delete;
  Programs& operator=(const Programs&) = delete;
  ~Programs() {
    if (ring != nullptr) ring_buffer__free(ring);
    vcpumap_destroy_event_programs(&loaded);
  }

  // Called by ring_buffer__consume for each record. A record decode_event refuses is skipped:
  // one bad record is not worth the stream.
  static int on_record(void* context, void* data, std::size_t size) {
    auto* self = static_cast<Programs*>(context);
    if (self->out == nullptr) return 0;
    auto event = decode_event({static_cast<const std::byte*>(data), size});
    if (event) self->out->push_back(*event);
    return 0;
  }

  vcpumap_event_programs loaded{};
  ring_buffer* ring = nullptr;
  std::vector<SchedEvent>* out = nullptr;  // drain()'s, while it runs
  std::vector<int> watched;                // sorted
  std::vector<std::uint64_t> lost_seen;    // by CPU: what drain() already reported
};

EventRing::EventRing(std::unique_ptr<Programs> programs) : programs_(std::move(programs)) {}

EventRing::~EventRing() = default;

Result<std::unique_ptr<EventRing>> EventRing::open() {
  auto programs = std::make_unique<Programs>();
  if (const int error = vcpumap_load_event_programs(&programs->loaded); error != 0) {
    return bpf_load_error("sched event ring", -error,
                          "it needs tp_btf programs and BPF ring buffers (kernel 5.8 or later)");
  }
  programs->ring =
      ring_buffer__new(programs->loaded.events, &Programs::on_record, programs.get(), nullptr);
  if (programs->ring == nullptr) {
    return make_error(ExitCode::failure, "BPF sched event ring: cannot map the ring buffer: {}",
                      std::strerror(errno));
  }
  programs->lost_seen.assign(VCPUMAP_DELAY_MAX_CPUS, 0);
  return std::unique_ptr<EventRing>(new EventRing(std::move(programs)));
}

Status EventRing::watch_processes(std::span<const int> pids) {
  std::vector<int> wanted(pids.begin(), pids.end());
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  std::vector<int> gone, added;
  auto& watched = programs_->watched;
  std::set_difference(watched.begin(), watched.end(), wanted.begin(), wanted.end(),
                      std::back_inserter(gone));
  std::set_difference(wanted.begin(), wanted.end(), watched.begin(), watched.end(),
                      std::back_inserter(added));
  const int map = programs_->loaded.tgids;
  for (const int pid : gone) bpf_map_delete_elem(map, &pid);
  const std::uint8_t yes = 1;
  for (const int pid : added) {
    if (bpf_map_update_elem(map, &pid, &yes, BPF_ANY) != 0) {
      return make_error(ExitCode::failure, "BPF sched event ring: cannot watch process {}: {}", pid,
                        std::strerror(errno));
    }
  }
  watched = std::move(wanted);
  return Ok{};
}

Status EventRing::enable() {
  if (const int error = vcpumap_attach_event_programs(&programs_->loaded); error != 0) {
    return make_error(ExitCode::failure,
                      "BPF sched event ring: cannot attach to the sched tracepoints: {}",
                      std::strerror(-error));
  }
  return Ok{};
}

Result<bool> EventRing::wait(int timeout_ms, int extra_fd) {
  pollfd fds[2] = {{ring_buffer__epoll_fd(programs_->ring), POLLIN, 0}, {extra_fd, POLLIN, 0}};
  const nfds_t count = extra_fd >= 0 ? 2 : 1;
  const int ready = ::poll(fds, count, timeout_ms);
  if (ready < 0 && errno != EINTR) {
    return make_error(ExitCode::failure, "waiting for sched events failed: {}",
                      std::strerror(errno));
  }
  if (ready <= 0) return false;
  return extra_fd >= 0 && (fds[1].revents & POLLIN) != 0;
}

void EventRing::drain(std::vector<SchedEvent>& out) {
  programs_->out = &out;
  ring_buffer__consume(programs_->ring);
  programs_->out = nullptr;
  const auto* state = programs_->loaded.state;
  const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
  const auto last = static_cast<std::size_t>(std::clamp<long>(cpus, 1, VCPUMAP_DELAY_MAX_CPUS));
  for (std::size_t cpu = 0; cpu < last; ++cpu) {
    const std::uint64_t lost = __atomic_load_n(&state->lost[cpu], __ATOMIC_RELAXED);
    if (lost == programs_->lost_seen[cpu]) continue;
    SchedEvent event;
    event.kind = SchedEvent::Kind::lost;
    event.cpu = static_cast<int>(cpu);
    event.lost = lost - programs_->lost_seen[cpu];
    out.push_back(event);
    programs_->lost_seen[cpu] = lost;
  }
}

}  // namespace vcpumap::bpf
