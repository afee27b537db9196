// libvirt's C API as vcpumap uses it, for the code of this folder only: the library loaded at
// run time, a session (one connection and what its calls share) and the bulk listing.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "util/result.h"

namespace vcpumap::libvirt {

// libvirt is loaded when a connection is first opened, not linked: linking it costs every run of
// vcpumap about 20 ms of start-up (its and its dependencies' constructors and relocations,
// measured in BENCHMARKS.md), even with --no-libvirt, and hosts without libvirt (Firecracker,
// cloud-hypervisor) would need it installed. The headers still type every call.
#define VCPUMAP_LIBVIRT_FUNCTIONS(X)   \
  X(virConnectClose)                   \
  X(virConnectGetAllDomainStats)       \
  X(virConnectOpen)                    \
  X(virDomainFree)                     \
  X(virDomainGetEmulatorPinInfo)       \
  X(virDomainGetID)                    \
  X(virDomainGetIOThreadInfo)          \
  X(virDomainGetName)                  \
  X(virDomainGetState)                 \
  X(virDomainGetUUIDString)            \
  X(virDomainGetVcpuPinInfo)           \
  X(virDomainGetXMLDesc)               \
  X(virDomainIOThreadInfoFree)         \
  X(virDomainLookupByUUIDString)       \
  X(virDomainPinEmulator)              \
  X(virDomainPinIOThread)              \
  X(virDomainPinVcpuFlags)             \
  X(virGetLastErrorCode)               \
  X(virGetLastErrorMessage)            \
  X(virNodeGetCPUMap)                  \
  X(virResetLastError)                 \
  X(virSetErrorFunc)                   \
  X(virDomainStatsRecordListFree)      \
  X(virTypedParamsGetInt)              \
  X(virEventRegisterDefaultImpl)       \
  X(virEventRunDefaultImpl)            \
  X(virEventAddTimeout)                \
  X(virEventRemoveTimeout)             \
  X(virConnectSetKeepAlive)            \
  X(virConnectRegisterCloseCallback)   \
  X(virConnectUnregisterCloseCallback) \
  X(virConnectDomainEventRegisterAny)  \
  X(virConnectDomainEventDeregisterAny)

struct Api {
#define VCPUMAP_DECLARE(name) decltype(&::name) name = nullptr;
  VCPUMAP_LIBVIRT_FUNCTIONS(VCPUMAP_DECLARE)
#undef VCPUMAP_DECLARE
};

// Loads libvirt once; the error says what is missing.
const Result<Api>& load_api();
// The loaded functions; only called once load_api has succeeded.
inline const Api& api() {
  return *load_api();
}

// The message of the calling thread's last libvirt error.
std::string last_error();

// A libvirt cpumap as a CpuSet.
CpuSet from_cpumap(const unsigned char* map, int maplen);

// What the call thread's jobs share: the connection is opened, used and closed there (the last
// reference goes with the last job), so no libvirt call ever runs on a caller's thread.
struct Session {
  virConnectPtr connection = nullptr;
  int host_cpus = 0;  // libvirt's host CPU count, sizes every cpumap
  CpuSet online;      // libvirt's default pinning: the host CPUs it counts as available
  std::shared_ptr<std::atomic<std::uint64_t>> calls;
  ~Session() {
    if (connection != nullptr) api().virConnectClose(connection);
  }

  // Makes one call that goes to the daemon and counts it (the call thread's progress).
  template <typename F, typename... Args>
  auto rpc(F function, Args... args) {
    auto result = function(args...);
    calls->fetch_add(1, std::memory_order_relaxed);
    return result;
  }
};

// The URI to connect to: `uri`, else LIBVIRT_DEFAULT_URI, else qemu:///system where its daemon
// socket exists (an error otherwise: libvirt is not on this host).
Result<std::string> resolve_uri(const std::string& uri);

// Opens a session on `target` (every error says "libvirt (URI) ..."), counting calls in `calls`.
Result<std::shared_ptr<Session>> open_session(const std::string& target,
                                              std::shared_ptr<std::atomic<std::uint64_t>> calls);

// Every domain, active and inactive: one bulk call for their states, one XML each.
Result<std::vector<LibvirtDomain>> list_all(Session& session, const std::string& uri);

// The domain of `uuid` afresh (a lookup, its state, its XML); nullopt when libvirt no longer has
// it (undefined, or a transient domain that stopped).
Result<std::optional<LibvirtDomain>> describe_one(Session& session, const std::string& uuid,
                                                  const std::string& uri);

}  // namespace vcpumap::libvirt
