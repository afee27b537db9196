// libvirt through its C API: domains (active and inactive), their configured pinning, nova
// metadata, and changing pinning the way virsh does (so libvirt's cgroups and XML stay right).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap::libvirt {

// Which definition a pin change applies to, as virsh's --live, --config and --current.
enum class Scope { current, live, config, live_and_config };

// How long a libvirt call may go unanswered before vcpumap goes on without it.
inline constexpr std::chrono::milliseconds kDefaultTimeout{2000};

class Connection {
 public:
  // Connects to `uri`; empty means LIBVIRT_DEFAULT_URI, else qemu:///system when its socket
  // exists. An error (never fatal for callers) says why libvirt can't be used. Every call,
  // this one included, runs on a thread of the connection's own and is given up after `timeout`
  // without an answer ("libvirt (URI) did not answer in 2 s"); after that every call fails at
  // once with the same error.
  static Result<std::unique_ptr<Connection>> open(
      const std::string& uri, std::chrono::milliseconds timeout = kDefaultTimeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Every domain, active and inactive, with what libvirt says about it.
  Result<std::vector<LibvirtDomain>> list_domains() const;

  // Pins one vCPU of the domain with this UUID (virDomainPinVcpuFlags).
  Status pin_vcpu(const std::string& uuid, int vcpu, const CpuSet& cpus, Scope scope) const;
  // Pins the emulator threads (virDomainPinEmulator).
  Status pin_emulator(const std::string& uuid, const CpuSet& cpus, Scope scope) const;
  // Pins one I/O thread by its libvirt id (virDomainPinIOThread).
  Status pin_iothread(const std::string& uuid, int iothread, const CpuSet& cpus, Scope scope) const;

  const std::string& uri() const { return uri_; }
  // Calls made to the daemon so far.
  std::uint64_t calls() const;

  struct Handle;  // opaque: the call thread and what its jobs share

 private:
  Connection(std::unique_ptr<Handle> handle, std::string uri);
  std::unique_ptr<Handle> handle_;
  std::string uri_;
};

// Parses nova's <nova:instance> out of a domain's XML; nullopt when it has none.
std::optional<NovaInstance> parse_nova_metadata(const std::string& domain_xml);

}  // namespace vcpumap::libvirt
