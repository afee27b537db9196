#include "sources/perf/sched_tracer.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>

#include <fmt/format.h>

#include "sources/procfs/cgroup.h"

#include "util/fd.h"
#include "util/text.h"

namespace vcpumap::perf {
namespace {

// "field:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;" -> name "prev_pid", offset 24, size 4.
bool parse_field_line(std::string_view line, std::string_view& name, Field& field) {
  const auto start = line.find("field:");
  const auto semi = line.find(';');
  if (start == std::string_view::npos || semi == std::string_view::npos) return false;
  std::string_view declaration = line.substr(start + 6, semi - start - 6);
  if (const auto bracket = declaration.find('['); bracket != std::string_view::npos) {
    declaration = declaration.substr(0, bracket);
  }
  const auto space = declaration.find_last_of(" \t");
  name = space == std::string_view::npos ? declaration : declaration.substr(space + 1);
  auto number_after = [&](std::string_view key) -> std::optional<std::int64_t> {
    const auto at = line.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    const auto value = line.substr(at + key.size());
    return parse_i64(trim(value.substr(0, value.find(';'))));
  };
  const auto offset = number_after("offset:");
  const auto size = number_after("size:");
  // Layouts are small: a number beyond an int is a damaged file, not an offset.
  if (!offset || !size || *offset < INT_MIN || *offset > INT_MAX || *size < INT_MIN ||
      *size > INT_MAX) {
    return false;
  }
  field.offset = static_cast<int>(*offset);
  field.size = static_cast<int>(*size);
  return true;
}

// A fixed char array field up to its NUL; empty when the layout does not fit the record.
std::string read_chars(std::string_view raw, const Field& field) {
  if (field.offset < 0 || field.size <= 0 ||
      std::int64_t{field.offset} + field.size > static_cast<std::int64_t>(raw.size())) {
    return {};
  }
  const std::string_view chars = raw.substr(field.offset, field.size);
  return std::string(chars.substr(0, chars.find('\0')));
}

std::int64_t read_int(std::string_view raw, const Field& field) {
  // In 64 bits: a layout's offset + size can overflow an int.
  if (field.offset < 0 || field.size < 0 ||
      std::int64_t{field.offset} + field.size > static_cast<std::int64_t>(raw.size())) {
    return -1;
  }
  const char* at = raw.data() + field.offset;
  switch (field.size) {
    case 4: {
      std::int32_t value;
      std::memcpy(&value, at, 4);
      return value;
    }
    case 8: {
      std::int64_t value;
      std::memcpy(&value, at, 8);
      return value;
    }
    case 2: {
      std::int16_t value;
      std::memcpy(&value, at, 2);
      return value;
    }
    default:
      return -1;
  }
}

int perf_event_open(perf_event_attr* attr, int cpu, int group_fd) {
  return static_cast<int>(
      ::syscall(SYS_perf_event_open, attr, -1, cpu, group_fd, PERF_FLAG_FD_CLOEXEC));
}

}  // namespace

Result<Tracepoint> parse_tracepoint_format(std::string_view text) {
  Tracepoint tracepoint;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.starts_with("ID:")) {
      if (auto id = parse_i64(trim(line.substr(3)))) tracepoint.id = static_cast<int>(*id);
      continue;
    }
    std::string_view name;
    Field field;
    if (!parse_field_line(line, name, field)) continue;
    if (name == "pid") tracepoint.pid = field;
    if (name == "prev_pid") tracepoint.prev_pid = field;
    if (name == "next_pid") tracepoint.next_pid = field;
    if (name == "prev_state") tracepoint.prev_state = field;
    if (name == "orig_cpu") tracepoint.orig_cpu = field;
    if (name == "dest_cpu") tracepoint.dest_cpu = field;
    if (name == "target_cpu") tracepoint.target_cpu = field;
    if (name == "prev_comm") tracepoint.prev_comm = field;
    if (name == "next_comm") tracepoint.next_comm = field;
  }
  if (tracepoint.id < 0) return make_error(ExitCode::failure, "tracepoint format without an ID");
  return tracepoint;
}

Result<SchedTracepoints> find_sched_tracepoints(const std::filesystem::path& root) {
  for (const char* dir : {"sys/kernel/tracing", "sys/kernel/debug/tracing"}) {
    const auto tracefs = root / dir;
    const auto events = tracefs / "events/sched";
    auto read = [&](const char* name) {
      return read_file_at(AT_FDCWD, (events / name / "format").c_str());
    };
    auto switch_text = read("sched_switch");
    auto migrate_text = read("sched_migrate_task");
    auto wakeup_text = read("sched_wakeup");
    if (!switch_text || !migrate_text || !wakeup_text) continue;
    auto sched_switch = parse_tracepoint_format(*switch_text);
    auto migrate = parse_tracepoint_format(*migrate_text);
    auto wakeup = parse_tracepoint_format(*wakeup_text);
    if (!sched_switch || !migrate || !wakeup) {
      return make_error(ExitCode::failure, "can't parse the sched tracepoint formats under {}",
                        events.string());
    }
    if (sched_switch->prev_pid.offset < 0 || sched_switch->next_pid.offset < 0 ||
        migrate->pid.offset < 0 || migrate->dest_cpu.offset < 0 || wakeup->pid.offset < 0) {
      return make_error(ExitCode::failure,
                        "the sched tracepoints under {} lack the fields vcpumap reads",
                        events.string());
    }
    return SchedTracepoints{*sched_switch, *migrate, *wakeup, tracefs};
  }
  return make_error(
      ExitCode::failure,
      "no sched tracepoints under {0}sys/kernel/tracing or {0}sys/kernel/debug/tracing: tracefs "
      "is not mounted (as root: mount -t tracefs nodev /sys/kernel/tracing), or run without "
      "--exact to record sampled placement",
      root.string() == "/" ? "/" : root.string() + "/");
}

bool decode_raw(const SchedTracepoints& tracepoints, std::string_view raw, SchedEvent& event) {
  if (raw.size() < 8) return false;
  std::uint16_t type;
  std::memcpy(&type, raw.data(), 2);
  if (type == tracepoints.sched_switch.id) {
    const auto& tp = tracepoints.sched_switch;
    event.kind = SchedEvent::Kind::sched_switch;
    event.prev_pid = static_cast<int>(read_int(raw, tp.prev_pid));
    event.next_pid = static_cast<int>(read_int(raw, tp.next_pid));
    event.prev_state = read_int(raw, tp.prev_state);
    event.prev.comm = read_chars(raw, tp.prev_comm);
    event.next.comm = read_chars(raw, tp.next_comm);
    return true;
  }
  if (type == tracepoints.migrate_task.id) {
    const auto& tp = tracepoints.migrate_task;
    event.kind = SchedEvent::Kind::migrate;
    event.pid = static_cast<int>(read_int(raw, tp.pid));
    event.orig_cpu = static_cast<int>(read_int(raw, tp.orig_cpu));
    event.dest_cpu = static_cast<int>(read_int(raw, tp.dest_cpu));
    return true;
  }
  if (type == tracepoints.wakeup.id) {
    const auto& tp = tracepoints.wakeup;
    event.kind = SchedEvent::Kind::wakeup;
    event.pid = static_cast<int>(read_int(raw, tp.pid));
    event.target_cpu = static_cast<int>(read_int(raw, tp.target_cpu));
    return true;
  }
  return false;
}

bool decode_record(const SchedTracepoints& tracepoints, int cpu, std::string_view record,
                   SchedEvent& event) {
  perf_event_header header;
  if (record.size() < sizeof header) return false;
  std::memcpy(&header, record.data(), sizeof header);
  if (header.size > record.size()) return false;
  const std::size_t body_size = header.size - std::min<std::size_t>(header.size, sizeof header);
  const char* body = record.data() + sizeof header;
  if (header.type == PERF_RECORD_SAMPLE && body_size >= 16 + 4) {
    // PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW: u64 time, u32 cpu, u32 res, u32 size,
    // then the raw tracepoint record.
    std::memcpy(&event.time_ns, body, 8);
    std::uint32_t sample_cpu;
    std::memcpy(&sample_cpu, body + 8, 4);
    event.cpu = static_cast<int>(sample_cpu);
    std::uint32_t raw_size;
    std::memcpy(&raw_size, body + 16, 4);
    if (raw_size > body_size - 20) return false;
    return decode_raw(tracepoints, std::string_view(body + 20, raw_size), event);
  }
  if (header.type == PERF_RECORD_LOST && body_size >= 16) {
    // u64 id, u64 lost, then (sample_id_all) the sample's time.
    event.kind = SchedEvent::Kind::lost;
    event.cpu = cpu;
    std::memcpy(&event.lost, body + 8, 8);
    if (body_size >= 24) std::memcpy(&event.time_ns, body + 16, 8);
    return true;
  }
  return false;
}

std::uint64_t decode_ring(const SchedTracepoints& tracepoints, int cpu, std::string_view ring,
                          std::uint64_t tail, std::uint64_t head, std::vector<SchedEvent>& out,
                          std::vector<char>& scratch) {
  const std::size_t size = ring.size();
  // The kernel's rings are pages; a smaller one can't hold even a header (copy() would wrap twice).
  if (size < sizeof(perf_event_header)) return tail;
  // A record may wrap past the end of the ring: copy it out whole.
  auto copy = [&](void* into, std::uint64_t from, std::size_t bytes) {
    const std::size_t start = static_cast<std::size_t>(from % size);
    const std::size_t first = std::min(bytes, size - start);
    std::memcpy(into, ring.data() + start, first);
    if (first < bytes) std::memcpy(static_cast<char*>(into) + first, ring.data(), bytes - first);
  };
  while (tail <= head && head - tail >= sizeof(perf_event_header)) {
    perf_event_header header;
    copy(&header, tail, sizeof header);
    if (header.size < sizeof header || header.size > head - tail || header.size > size) break;
    scratch.resize(header.size);
    copy(scratch.data(), tail, header.size);
    SchedEvent event;
    if (decode_record(tracepoints, cpu, std::string_view(scratch.data(), scratch.size()), event)) {
      out.push_back(event);
    }
    tail += header.size;
  }
  return tail;
}

// One CPU: the sched_switch event owns the ring; the other two write into it (SET_OUTPUT).
struct SchedTracer::Ring {
  int cpu = -1;
  std::vector<Fd> fds;
  void* base = MAP_FAILED;
  std::size_t map_size = 0;
  std::size_t data_size = 0;
  std::vector<char> scratch;

  ~Ring() {
    if (base != MAP_FAILED) ::munmap(base, map_size);
  }
};

Result<std::unique_ptr<SchedTracer>> SchedTracer::open(const SchedTracepoints& tracepoints,
                                                       const CpuSet& cpus, int ring_pages) {
  std::unique_ptr<SchedTracer> tracer(new SchedTracer());
  tracer->tracepoints_ = tracepoints;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  for (int cpu : cpus.cpus()) {
    auto ring = std::make_unique<Ring>();
    ring->cpu = cpu;
    for (const Tracepoint* tp :
         {&tracepoints.sched_switch, &tracepoints.migrate_task, &tracepoints.wakeup}) {
      perf_event_attr attr{};
      attr.size = sizeof attr;
      attr.type = PERF_TYPE_TRACEPOINT;
      attr.config = static_cast<std::uint64_t>(tp->id);
      attr.sample_period = 1;
      attr.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW;
      attr.disabled = 1;
      attr.use_clockid = 1;
      attr.clockid = CLOCK_MONOTONIC;  // the clock of the sampler's steady_clock samples
      attr.sample_id_all = 1;          // so PERF_RECORD_LOST carries its time too
      attr.watermark = 1;
      attr.wakeup_watermark = static_cast<std::uint32_t>(page * ring_pages / 4);
      Fd fd(perf_event_open(&attr, cpu, -1));
      if (!fd.valid()) {
        const int error = errno;
        return make_error(ExitCode::failure,
                          "perf_event_open of tracepoint {} on CPU {} failed: {}{}", tp->id, cpu,
                          std::strerror(error),
                          error == EACCES || error == EPERM
                              ? " (run as root, or lower /proc/sys/kernel/perf_event_paranoid); "
                                "or run without --exact"
                              : "; run without --exact to record sampled placement");
      }
      ring->fds.push_back(std::move(fd));
    }
    ring->data_size = page * static_cast<std::size_t>(ring_pages);
    ring->map_size = page + ring->data_size;
    ring->base =
        ::mmap(nullptr, ring->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, ring->fds[0].get(), 0);
    if (ring->base == MAP_FAILED) {
      return make_error(ExitCode::failure, "can't map the perf ring of CPU {}: {}", cpu,
                        std::strerror(errno));
    }
    for (std::size_t i = 1; i < ring->fds.size(); ++i) {
      if (::ioctl(ring->fds[i].get(), PERF_EVENT_IOC_SET_OUTPUT, ring->fds[0].get()) != 0) {
        return make_error(ExitCode::failure, "can't share the perf ring of CPU {}: {}", cpu,
                          std::strerror(errno));
      }
    }
    tracer->rings_.push_back(std::move(ring));
  }
  return tracer;
}

SchedTracer::~SchedTracer() = default;

Status SchedTracer::enable() {
  for (auto& ring : rings_) {
    for (auto& fd : ring->fds) {
      if (::ioctl(fd.get(), PERF_EVENT_IOC_ENABLE, 0) != 0) {
        return make_error(ExitCode::failure, "enabling a sched tracepoint failed: {}",
                          std::strerror(errno));
      }
    }
  }
  return Ok{};
}

Result<bool> SchedTracer::wait(int timeout_ms, int extra_fd) {
  std::vector<pollfd> fds;
  for (auto& ring : rings_) fds.push_back({ring->fds[0].get(), POLLIN, 0});
  if (extra_fd >= 0) fds.push_back({extra_fd, POLLIN, 0});
  const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
  if (ready < 0 && errno != EINTR) {
    return make_error(ExitCode::failure, "waiting for sched events failed: {}",
                      std::strerror(errno));
  }
  if (ready <= 0) return false;
  return extra_fd >= 0 && (fds.back().revents & POLLIN) != 0;
}

const SchedTracer::TaskIdentity& SchedTracer::identity(int tid) {
  auto [slot, fresh] = identities_.try_emplace(tid);
  if (!fresh) return slot->second;
  if (tid == 0) {  // the idle task
    slot->second.kernel_thread = true;
    return slot->second;
  }
  std::ifstream status(fmt::format("/proc/{}/status", tid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("Tgid:")) slot->second.tgid = std::atoi(line.c_str() + 5);
    if (line.starts_with("Kthread:")) slot->second.kernel_thread = std::atoi(line.c_str() + 8) == 1;
  }
  std::ifstream cgroup(fmt::format("/proc/{}/cgroup", tid));
  const std::string membership(std::istreambuf_iterator<char>(cgroup), {});
  const procfs::CgroupReader reader("/");
  slot->second.cgroup = reader.cgroup_id(procfs::parse_cgroup_membership(membership)).value_or(0);
  return slot->second;
}

void SchedTracer::drain(std::vector<SchedEvent>& out) {
  const std::size_t first = out.size();
  for (auto& ring : rings_) {
    auto* meta = static_cast<perf_event_mmap_page*>(ring->base);
    const char* data = static_cast<const char*>(ring->base) + meta->data_offset;
    const std::size_t size = meta->data_size ? meta->data_size : ring->data_size;
    // data_head is written by the kernel: read it with acquire before reading the records.
    const std::uint64_t head =
        std::atomic_ref<__u64>(meta->data_head).load(std::memory_order_acquire);
    const std::uint64_t tail = decode_ring(tracepoints_, ring->cpu, std::string_view(data, size),
                                           meta->data_tail, head, out, ring->scratch);
    std::atomic_ref<__u64>(meta->data_tail).store(tail, std::memory_order_release);
  }
  // perf's sched_switch names each side by tid and comm only: the culprits' process, cgroup and
  // whether they are kernel threads come from /proc, once per tid, while the task lives.
  for (std::size_t i = first; i < out.size(); ++i) {
    SchedEvent& event = out[i];
    if (event.kind != SchedEvent::Kind::sched_switch) continue;
    for (auto [side, tid] :
         {std::pair{&event.prev, event.prev_pid}, {&event.next, event.next_pid}}) {
      const TaskIdentity& known = identity(tid);
      side->tgid = known.tgid;
      side->kernel_thread = known.kernel_thread;
      side->cgroup = known.cgroup;
    }
  }
}

}  // namespace vcpumap::perf
