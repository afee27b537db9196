// Proxmox VE's guest configuration, ROOT/etc/pve/qemu-server/VMID.conf: what it says about the
// VM's CPUs (qm.conf(5)). Proxmox runs QEMU without libvirt, so this file is the configured side
// an audit compares with what the kernel enforces.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap::proxmox {

// Parses a qemu-server config's text: the current configuration, before its first [section]
// (snapshots, pending changes). An error names the line and the value that is wrong.
Result<ProxmoxConfig> parse_qemu_server_config(std::string_view text);

// Reads and parses ROOT/etc/pve/qemu-server/VMID.conf; an error when absent or malformed.
Result<ProxmoxConfig> read_qemu_server_config(const std::filesystem::path& root, int vmid);

// What stat(2) says of a file that changes when it is edited in place or replaced.
struct FileStamp {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  timespec mtime{};
  timespec ctime{};
};

// The VMID.conf files of a long-running sampler: each file is stat()ed per call and read again
// only when its stamp changed (or is too recent to trust: a same-size edit within the clock's
// granularity keeps the mtime), and parsed again only when its text differs. Not thread-safe.
class ConfigFiles {
 public:
  explicit ConfigFiles(std::filesystem::path root);

  // The config of `vmid` as the file says now (an error when absent or malformed).
  const Result<ProxmoxConfig>& get(int vmid);
  // How many times a file's text was parsed: an unchanged file is not parsed again.
  std::uint64_t parses() const { return parses_; }

 private:
  struct Entry {
    std::optional<FileStamp> stamp;  // nullopt: the file could not be stat()ed
    bool trusted = false;            // the stamp is old enough for an edit to change it
    std::optional<std::string> text;
    Result<ProxmoxConfig> config;
  };

  std::filesystem::path root_;
  std::map<int, Entry> entries_;
  std::uint64_t parses_ = 0;
};

}  // namespace vcpumap::proxmox
