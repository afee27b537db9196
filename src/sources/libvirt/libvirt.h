// libvirt through its C API: domains (active and inactive), their configured pinning, nova
// metadata, and changing pinning the way virsh does (so libvirt's cgroups and XML stay right).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap::libvirt {

// Which definition a pin change applies to, as virsh's --live, --config and --current.
enum class Scope { current, live, config, live_and_config };

class Connection {
 public:
  // Connects to `uri`; empty means LIBVIRT_DEFAULT_URI, else qemu:///system when its socket
  // exists under `root`. An error (never fatal for callers) says why libvirt can't be used.
  static Result<std::unique_ptr<Connection>> open(const std::string& uri);
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

 private:
  struct Handle;
  Connection(std::unique_ptr<Handle> handle, std::string uri);
  std::unique_ptr<Handle> handle_;
  std::string uri_;
};

// Parses nova's <nova:instance> out of a domain's XML; nullopt when it has none.
std::optional<NovaInstance> parse_nova_metadata(const std::string& domain_xml);

}  // namespace vcpumap::libvirt
