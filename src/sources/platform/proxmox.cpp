#include "sources/platform/proxmox.h"

#include <fcntl.h>
#include <time.h>

#include <charconv>
#include <chrono>

#include <fmt/format.h>

#include "util/fd.h"
#include "util/text.h"

namespace vcpumap::proxmox {
namespace {

// A count as qemu-server writes it: 1 to 65536.
Result<int> parse_count(std::string_view key, std::string_view value, int line) {
  const auto number = parse_u64(value);
  if (!number || *number < 1 || *number > 65536) {
    return make_error(ExitCode::bad_input, "line {}: {} '{}' is not a count from 1 to 65536", line,
                      key, printable(value));
  }
  return static_cast<int>(*number);
}

Result<double> parse_cpulimit(std::string_view value, int line) {
  double number = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  // qm.conf(5): cpulimit is 0 (no limit) to 128 host CPUs, fractions allowed.
  if (error != std::errc{} || end != value.data() + value.size() || !(number >= 0) ||
      number > 128) {
    return make_error(ExitCode::bad_input, "line {}: cpulimit '{}' is not a number from 0 to 128",
                      line, printable(value));
  }
  return number;
}

Status apply(ProxmoxConfig& config, std::string_view key, std::string_view value, int line) {
  if (key == "name") {
    config.name = std::string(value);
  } else if (key == "cores" || key == "sockets" || key == "vcpus" || key == "cpuunits") {
    // cpuunits is 1 to 262144 since PVE 7 (cgroup v2 weights go to 10000).
    if (key == "cpuunits") {
      const auto number = parse_u64(value);
      if (!number || *number < 1 || *number > 262144) {
        return make_error(ExitCode::bad_input,
                          "line {}: cpuunits '{}' is not a weight from 1 to 262144", line,
                          printable(value));
      }
      config.cpuunits = static_cast<int>(*number);
      return Ok{};
    }
    auto count = parse_count(key, value, line);
    if (!count) return count.error();
    (key == "cores" ? config.cores : key == "sockets" ? config.sockets : config.vcpus) = *count;
  } else if (key == "affinity") {
    auto cpus = CpuSet::parse_list(value);
    if (!cpus) {
      return make_error(ExitCode::bad_input, "line {}: affinity '{}' is not a CPU list like 0-3,8",
                        line, printable(value));
    }
    config.affinity = std::move(*cpus);
    config.affinity_text = std::string(value);
  } else if (key == "numa") {
    if (value != "0" && value != "1") {
      return make_error(ExitCode::bad_input, "line {}: numa '{}' is not 0 or 1", line,
                        printable(value));
    }
    config.numa = value == "1";
  } else if (key == "cpulimit") {
    auto limit = parse_cpulimit(value, line);
    if (!limit) return limit.error();
    config.cpulimit = *limit;
  }
  return Ok{};  // every other key (disks, nets, description...) says nothing about CPUs
}

std::filesystem::path config_path(const std::filesystem::path& root, int vmid) {
  return root / "etc/pve/qemu-server" / fmt::format("{}.conf", vmid);
}

// The config a file's text gives, or what stood in the way; `text` is nullopt when unreadable.
Result<ProxmoxConfig> config_of(const std::filesystem::path& path,
                                const std::optional<std::string>& text) {
  if (!text) return make_error(ExitCode::failure, "cannot read {}", path.string());
  auto config = parse_qemu_server_config(*text);
  if (!config) {
    return make_error(ExitCode::bad_input, "{} {}", path.string(), config.error().message);
  }
  return config;
}

std::optional<FileStamp> stamp_of(const std::filesystem::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return std::nullopt;
  return FileStamp{status.st_dev, status.st_ino, status.st_size, status.st_mtim, status.st_ctim};
}

bool same_time(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool same_stamp(const std::optional<FileStamp>& a, const std::optional<FileStamp>& b) {
  if (!a || !b) return !a && !b;
  return a->device == b->device && a->inode == b->inode && a->size == b->size &&
         same_time(a->mtime, b->mtime) && same_time(a->ctime, b->ctime);
}

// A file time this close to now may not move on the next edit: the kernel stamps files with a
// coarse clock (a jiffy), pmxcfs (/etc/pve) in whole seconds.
bool recent(const timespec& time) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec - time.tv_sec < 2;
}

}  // namespace

Result<ProxmoxConfig> parse_qemu_server_config(std::string_view text) {
  ProxmoxConfig config;
  int number = 0;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const auto raw = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++number;
    const auto line = trim(raw);
    // '#' lines are the description; a [section] starts a snapshot or the pending changes.
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') break;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      return make_error(ExitCode::bad_input, "line {}: '{}' is not 'key: value'", number,
                        printable(line));
    }
    const auto key = trim(line.substr(0, colon));
    const auto value = trim(line.substr(colon + 1));
    if (auto applied = apply(config, key, value, number); !applied) return applied.error();
  }
  if (config.affinity && config.affinity->empty()) config.affinity.reset();  // "affinity: " unsets
  return config;
}

Result<ProxmoxConfig> read_qemu_server_config(const std::filesystem::path& root, int vmid) {
  const auto path = config_path(root, vmid);
  return config_of(path, read_file_at(AT_FDCWD, path.c_str()));
}

ConfigFiles::ConfigFiles(std::filesystem::path root) : root_(std::move(root)) {}

const Result<ProxmoxConfig>& ConfigFiles::get(int vmid) {
  const auto path = config_path(root_, vmid);
  // stat before reading: an edit between the two changes the stamp, so it is read again.
  auto stamp = stamp_of(path);
  auto found = entries_.find(vmid);
  if (found != entries_.end() && found->second.trusted && same_stamp(found->second.stamp, stamp)) {
    return found->second.config;
  }
  auto text = stamp ? read_file_at(AT_FDCWD, path.c_str()) : std::nullopt;
  if (found == entries_.end()) {
    if (text) ++parses_;
    auto config = config_of(path, text);
    found = entries_.emplace(vmid, Entry{std::nullopt, false, std::move(text), std::move(config)})
                .first;
  } else if (text != found->second.text) {
    if (text) ++parses_;
    found->second.config = config_of(path, text);
    found->second.text = std::move(text);
  }
  auto& entry = found->second;
  entry.trusted = stamp && !recent(stamp->mtime);
  entry.stamp = stamp;
  return entry.config;
}

}  // namespace vcpumap::proxmox
