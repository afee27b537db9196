#include "record/format.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

namespace vcpumap::record {
namespace {

// Thread states as proc(5) letters, coded in 5 bits beside 3 flag bits.
constexpr std::string_view kStates = "?RSDTtXZPIWK";

std::uint8_t state_code(char state) {
  const auto pos = kStates.find(state);
  return pos == std::string_view::npos ? 0 : static_cast<std::uint8_t>(pos);
}

// A state code past the letters is a newer writer's or damage: the read fails.
char state_char(std::uint8_t code, ByteReader& in) {
  if (code >= kStates.size()) in.fail();
  return code < kStates.size() ? kStates[code] : '?';
}

// Reads an enum stored as a byte, failing the read when it is past `last`.
template <typename Enum>
Enum checked_enum(ByteReader& in, std::uint8_t last) {
  const std::uint8_t raw = in.byte();
  if (raw > last) in.fail();
  return static_cast<Enum>(raw > last ? 0 : raw);
}

void put_u32(std::string& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(std::string_view bytes) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= std::uint32_t(std::uint8_t(bytes[i])) << (8 * i);
  return value;
}

// Per-thread previous values inside one block: each block decodes on its own, so a reader
// that stops at a damaged block loses nothing before it.
struct Previous {
  std::uint64_t cpu_time = 0, run_delay = 0, migrations = 0;
};

}  // namespace

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_signed(std::string& out, std::int64_t value) {
  put_varint(out,
             (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63));
}

void put_string(std::string& out, std::string_view text) {
  put_varint(out, text.size());
  out.append(text);
}

std::uint64_t ByteReader::varint() {
  std::uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= bytes_.size()) break;
    const auto byte = static_cast<std::uint8_t>(bytes_[pos_++]);
    value |= std::uint64_t(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  ok_ = false;
  return 0;
}

std::int64_t ByteReader::signed_varint() {
  const std::uint64_t raw = varint();
  return static_cast<std::int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
}

std::uint8_t ByteReader::byte() {
  if (pos_ >= bytes_.size()) {
    ok_ = false;
    return 0;
  }
  return static_cast<std::uint8_t>(bytes_[pos_++]);
}

std::string_view ByteReader::take(std::uint64_t size) {
  if (!ok_ || size > bytes_.size() - pos_) {
    ok_ = false;
    return {};
  }
  const auto taken = bytes_.substr(pos_, size);
  pos_ += size;
  return taken;
}

std::string ByteReader::string() {
  const std::uint64_t size = varint();
  if (!ok_ || size > bytes_.size() - pos_) {
    ok_ = false;
    return {};
  }
  std::string text(bytes_.substr(pos_, size));
  pos_ += size;
  return text;
}

bool known_block_type(std::uint8_t type) {
  return type >= static_cast<std::uint8_t>(BlockType::host) &&
         type <= static_cast<std::uint8_t>(BlockType::end);
}

std::string encode_file_header(std::uint32_t version) {
  std::string out(kMagic);
  put_u32(out, version);
  return out;
}

Result<std::uint32_t> check_file_header(std::string_view header) {
  if (header.size() < kFileHeaderSize || header.substr(0, kMagic.size()) != kMagic) {
    return make_error(ExitCode::bad_input, "not a vcpumap recording (no VCPUMAPR header)");
  }
  const std::uint32_t version = get_u32(header.substr(kMagic.size()));
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return make_error(ExitCode::bad_input,
                      "recording format version {}, but this vcpumap reads versions {} to {}: {}",
                      version, kOldestFormatVersion, kFormatVersion,
                      version > kFormatVersion ? "use a newer vcpumap" : "use an older vcpumap");
  }
  return version;
}

std::uint32_t block_crc(std::uint8_t type, std::string_view payload) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef type_byte = type;
  crc = crc32(crc, &type_byte, 1);
  crc =
      crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  return static_cast<std::uint32_t>(crc);
}

std::string frame_block(BlockType type, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + kBlockOverhead);
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  out.push_back(static_cast<char>(type));
  out.append(payload);
  put_u32(out, block_crc(static_cast<std::uint8_t>(type), payload));
  return out;
}

std::string encode_payload(const HostBlock& block) {
  std::string out;
  put_string(out, block.tool_version);
  put_string(out, block.hostname);
  put_string(out, block.kernel);
  out.push_back(static_cast<char>(block.mode));
  put_varint(out, block.interval_ns);
  put_signed(out, block.start_wall_ns);
  const Topology& topology = block.topology;
  put_varint(out, topology.cpus.size());
  for (const Cpu& cpu : topology.cpus) {
    put_signed(out, cpu.cpu);
    put_signed(out, cpu.core);
    put_signed(out, cpu.package);
    put_signed(out, cpu.node);
    out.push_back(cpu.online ? 1 : 0);
  }
  put_varint(out, topology.packages);
  put_varint(out, topology.cores);
  put_varint(out, topology.threads_per_core);
  put_string(out, topology.hypervisor_vendor);
  put_string(out, topology.model_name);
  put_varint(out, block.vm_filter.size());
  for (const auto& vm : block.vm_filter) put_string(out, vm);
  put_string(out, block.source);
  return out;
}

std::string encode_payload(const IdentityBlock& block) {
  std::string out;
  put_varint(out, block.time_ns);
  put_varint(out, block.vms.size());
  for (const VmIdentity& vm : block.vms) {
    put_varint(out, vm.key);
    put_varint(out, vm.pid);
    put_string(out, vm.name);
    put_string(out, vm.uuid);
    out.push_back(static_cast<char>(vm.hypervisor));
  }
  put_varint(out, block.threads.size());
  for (const ThreadIdentity& thread : block.threads) {
    put_varint(out, thread.key);
    put_varint(out, thread.vm_key);
    put_varint(out, thread.tid);
    put_string(out, thread.name);
    out.push_back(static_cast<char>(thread.role));
    put_signed(out, thread.vcpu);
    put_string(out, thread.iothread);
    put_varint(out, thread.start_time_ticks);
    put_string(out, thread.affinity);
  }
  return out;
}

std::string encode_payload(const SampleBlock& block) {
  std::string out;
  std::unordered_map<std::uint32_t, Previous> previous;
  std::uint64_t last_time = 0;
  put_varint(out, block.samples.size());
  for (const SampleRecord& sample : block.samples) {
    put_signed(out, static_cast<std::int64_t>(sample.time_ns - last_time));
    last_time = sample.time_ns;
    put_varint(out, sample.threads.size());
    std::uint32_t last_key = 0;
    for (const ThreadSample& thread : sample.threads) {
      put_signed(out, static_cast<std::int64_t>(thread.key) - last_key);
      last_key = thread.key;
      put_signed(out, thread.cpu);
      const std::uint8_t flags = (thread.cpu_time_ns ? 1 : 0) | (thread.run_delay_ns ? 2 : 0) |
                                 (thread.migrations ? 4 : 0);
      out.push_back(static_cast<char>(flags | (state_code(thread.state) << 3)));
      Previous& before = previous[thread.key];
      // Counters only grow, but a reused key never happens and a wrap would still round-trip
      // through the signed delta.
      if (thread.cpu_time_ns) put_signed(out, std::int64_t(*thread.cpu_time_ns - before.cpu_time));
      if (thread.run_delay_ns)
        put_signed(out, std::int64_t(*thread.run_delay_ns - before.run_delay));
      if (thread.migrations) put_signed(out, std::int64_t(*thread.migrations - before.migrations));
      if (thread.cpu_time_ns) before.cpu_time = *thread.cpu_time_ns;
      if (thread.run_delay_ns) before.run_delay = *thread.run_delay_ns;
      if (thread.migrations) before.migrations = *thread.migrations;
    }
  }
  return out;
}

namespace {

void put_peer(std::string& out, const Peer& peer) {
  put_varint(out, static_cast<std::uint32_t>(peer.tid));
  put_signed(out, std::int64_t{peer.tgid} - peer.tid);  // 0 for a process's main thread
  out.push_back(peer.kernel_thread ? 1 : 0);
  put_string(out, peer.comm);
  put_varint(out, peer.cgroup);
}

// The fields of an event after its kind, time and CPU.
void put_event_body(std::string& out, const Event& event, std::uint32_t version) {
  switch (event.kind) {
    case EventKind::lost:
      put_varint(out, event.lost);
      break;
    case EventKind::migrate:
      put_varint(out, event.key);
      put_signed(out, event.orig_cpu);
      break;
    case EventKind::switch_out:
      put_varint(out, event.key);
      out.push_back(event.state);
      if (version >= 2) put_peer(out, event.peer);
      break;
    case EventKind::switch_in:
      put_varint(out, event.key);
      if (version >= 2) put_peer(out, event.peer);
      break;
    case EventKind::wakeup:
      put_varint(out, event.key);
      break;
    case EventKind::cpu_switch:
      put_peer(out, event.peer);
      break;
  }
}

}  // namespace

std::string encode_payload(const EventBlock& block, std::uint32_t version) {
  std::string out;
  std::string body;
  std::uint64_t last_time = 0;
  const auto kept = [version](const Event& event) {
    return version >= 2 || event.kind != EventKind::cpu_switch;  // version 1 has no such kind
  };
  put_varint(out, static_cast<std::uint64_t>(
                      std::count_if(block.events.begin(), block.events.end(), kept)));
  for (const Event& event : block.events) {
    if (!kept(event)) continue;
    out.push_back(static_cast<char>(event.kind));
    put_signed(out, static_cast<std::int64_t>(event.time_ns - last_time));
    last_time = event.time_ns;
    put_signed(out, event.cpu);
    if (version < 2) {
      put_event_body(out, event, version);
      continue;
    }
    // Version 2 gives each event's length, so a reader skips a kind it does not know and the
    // fields a newer writer adds at the end.
    body.clear();
    put_event_body(body, event, version);
    put_string(out, body);
  }
  return out;
}

std::string encode_payload(const EndBlock& block) {
  std::string out;
  put_varint(out, block.time_ns);
  put_varint(out, block.samples);
  put_varint(out, block.events);
  put_varint(out, block.lost_events);
  put_string(out, block.reason);
  return out;
}

namespace {

HostBlock decode_host(ByteReader& in) {
  HostBlock block;
  block.tool_version = in.string();
  block.hostname = in.string();
  block.kernel = in.string();
  block.mode = checked_enum<Mode>(in, static_cast<std::uint8_t>(Mode::exact));
  block.interval_ns = in.varint();
  block.start_wall_ns = in.signed_varint();
  const std::uint64_t cpus = in.varint();
  for (std::uint64_t i = 0; i < cpus && in.ok(); ++i) {
    Cpu cpu;
    const std::int64_t number = in.signed_varint();
    cpu.cpu = static_cast<int>(number);
    cpu.core = static_cast<int>(in.signed_varint());
    cpu.package = static_cast<int>(in.signed_varint());
    cpu.node = static_cast<int>(in.signed_varint());
    cpu.online = in.byte() != 0;
    // A CpuSet is a bitmap: CPU 2^31 - 1 would allocate 256 MiB. No host has such a CPU.
    if (number < 0 || number >= CpuSet::kMaxCpu) {
      in.fail();
      break;
    }
    block.topology.present.add(cpu.cpu);
    if (cpu.online) block.topology.online.add(cpu.cpu);
    block.topology.cpus.push_back(cpu);
  }
  block.topology.packages = static_cast<int>(in.varint());
  block.topology.cores = static_cast<int>(in.varint());
  block.topology.threads_per_core = static_cast<int>(in.varint());
  block.topology.hypervisor_vendor = in.string();
  block.topology.model_name = in.string();
  const std::uint64_t filters = in.varint();
  for (std::uint64_t i = 0; i < filters && in.ok(); ++i) block.vm_filter.push_back(in.string());
  if (in.ok() && !in.at_end()) block.source = in.string();  // absent in older files
  return block;
}

IdentityBlock decode_identity(ByteReader& in) {
  IdentityBlock block;
  block.time_ns = in.varint();
  const std::uint64_t vms = in.varint();
  for (std::uint64_t i = 0; i < vms && in.ok(); ++i) {
    VmIdentity vm;
    vm.key = static_cast<std::uint32_t>(in.varint());
    vm.pid = static_cast<int>(in.varint());
    vm.name = in.string();
    vm.uuid = in.string();
    vm.hypervisor = checked_enum<Hypervisor>(in, static_cast<std::uint8_t>(Hypervisor::crosvm));
    block.vms.push_back(std::move(vm));
  }
  const std::uint64_t threads = in.varint();
  for (std::uint64_t i = 0; i < threads && in.ok(); ++i) {
    ThreadIdentity thread;
    thread.key = static_cast<std::uint32_t>(in.varint());
    thread.vm_key = static_cast<std::uint32_t>(in.varint());
    thread.tid = static_cast<int>(in.varint());
    thread.name = in.string();
    thread.role = checked_enum<ThreadRole>(in, static_cast<std::uint8_t>(ThreadRole::vhost));
    thread.vcpu = static_cast<int>(in.signed_varint());
    thread.iothread = in.string();
    thread.start_time_ticks = in.varint();
    thread.affinity = in.string();
    block.threads.push_back(std::move(thread));
  }
  return block;
}

SampleBlock decode_samples(ByteReader& in) {
  SampleBlock block;
  std::unordered_map<std::uint32_t, Previous> previous;
  std::uint64_t time = 0;
  const std::uint64_t count = in.varint();
  for (std::uint64_t i = 0; i < count && in.ok(); ++i) {
    SampleRecord sample;
    time += static_cast<std::uint64_t>(in.signed_varint());
    sample.time_ns = time;
    const std::uint64_t threads = in.varint();
    // Keys are u32 deltas; unsigned arithmetic, so a damaged delta wraps instead of overflowing.
    std::uint64_t key = 0;
    for (std::uint64_t j = 0; j < threads && in.ok(); ++j) {
      ThreadSample thread;
      key += static_cast<std::uint64_t>(in.signed_varint());
      thread.key = static_cast<std::uint32_t>(key);
      thread.cpu = static_cast<int>(in.signed_varint());
      const std::uint8_t packed = in.byte();
      thread.state = state_char(packed >> 3, in);
      Previous& before = previous[thread.key];
      if (packed & 1) thread.cpu_time_ns = before.cpu_time += in.signed_varint();
      if (packed & 2) thread.run_delay_ns = before.run_delay += in.signed_varint();
      if (packed & 4) thread.migrations = before.migrations += in.signed_varint();
      sample.threads.push_back(thread);
    }
    block.samples.push_back(std::move(sample));
  }
  return block;
}

Peer get_peer(ByteReader& in) {
  Peer peer;
  peer.tid = static_cast<int>(static_cast<std::uint32_t>(in.varint()));
  // In unsigned arithmetic: a damaged delta wraps instead of overflowing.
  peer.tgid = static_cast<int>(static_cast<std::uint32_t>(
      static_cast<std::uint64_t>(peer.tid) + static_cast<std::uint64_t>(in.signed_varint())));
  const std::uint8_t flags = in.byte();
  if (flags > 1) in.fail();
  peer.kernel_thread = flags & 1;
  peer.comm = in.string();
  peer.cgroup = in.varint();
  return peer;
}

// The fields after kind, time and CPU; false for a kind this vcpumap does not know.
bool get_event_body(ByteReader& in, Event& event, std::uint32_t version) {
  switch (event.kind) {
    case EventKind::lost:
      event.lost = in.varint();
      return true;
    case EventKind::migrate:
      event.key = static_cast<std::uint32_t>(in.varint());
      event.orig_cpu = static_cast<int>(in.signed_varint());
      return true;
    case EventKind::switch_out:
      event.key = static_cast<std::uint32_t>(in.varint());
      event.state = static_cast<char>(in.byte());
      if (kStates.find(event.state) == std::string_view::npos) in.fail();
      break;
    case EventKind::switch_in:
      event.key = static_cast<std::uint32_t>(in.varint());
      break;
    case EventKind::wakeup:
      event.key = static_cast<std::uint32_t>(in.varint());
      return true;
    case EventKind::cpu_switch:
      if (version < 2) in.fail();
      break;
    default:
      return false;
  }
  if (version >= 2) {
    event.peer = get_peer(in);
    event.has_peer = true;
  }
  return true;
}

EventBlock decode_events(ByteReader& in, std::uint32_t version) {
  EventBlock block;
  std::uint64_t time = 0;
  const std::uint64_t count = in.varint();
  for (std::uint64_t i = 0; i < count && in.ok(); ++i) {
    Event event;
    const std::uint8_t kind = in.byte();
    event.kind = static_cast<EventKind>(kind);
    time += static_cast<std::uint64_t>(in.signed_varint());
    event.time_ns = time;
    event.cpu = static_cast<int>(in.signed_varint());
    if (version < 2) {
      // Version 1 has no lengths: a kind it never wrote is damage.
      if (kind > static_cast<std::uint8_t>(EventKind::lost) || !get_event_body(in, event, 1)) {
        in.fail();
      }
      block.events.push_back(event);
      continue;
    }
    ByteReader body(in.take(in.varint()));
    if (!in.ok()) break;
    // Bytes past the fields known here are a newer writer's additions: skipped, like a kind
    // this vcpumap does not know.
    if (!get_event_body(body, event, version)) continue;
    if (!body.ok()) {
      in.fail();
      break;
    }
    block.events.push_back(std::move(event));
  }
  return block;
}

EndBlock decode_end(ByteReader& in) {
  EndBlock block;
  block.time_ns = in.varint();
  block.samples = in.varint();
  block.events = in.varint();
  block.lost_events = in.varint();
  block.reason = in.string();
  return block;
}

}  // namespace

Result<Block> decode_payload(std::uint8_t type, std::string_view payload, std::uint32_t version) {
  ByteReader in(payload);
  Block block;
  switch (static_cast<BlockType>(type)) {
    case BlockType::host:
      block = decode_host(in);
      break;
    case BlockType::identity:
      block = decode_identity(in);
      break;
    case BlockType::samples:
      block = decode_samples(in);
      break;
    case BlockType::events:
      block = decode_events(in, version);
      break;
    case BlockType::end:
      block = decode_end(in);
      break;
    default:
      return make_error(ExitCode::failure, "unknown block type {}", type);
  }
  if (!in.ok() || !in.at_end()) {
    return make_error(ExitCode::failure, "malformed block of type {} ({} bytes)", type,
                      payload.size());
  }
  return block;
}

std::string_view to_string(Mode mode) {
  return mode == Mode::exact ? "exact" : "sampled";
}

}  // namespace vcpumap::record
