#include "sources/libvirt/libvirt.h"

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

namespace vcpumap::libvirt {
namespace {

// libvirt is loaded when a connection is first opened, not linked: linking it costs every run of
// vcpumap about 20 ms of start-up (its and its dependencies' constructors and relocations,
// measured in BENCHMARKS.md), even with --no-libvirt, and hosts without libvirt (Firecracker,
// cloud-hypervisor) would need it installed. The headers still type every call.
#define VCPUMAP_LIBVIRT_FUNCTIONS(X) \
  X(virConnectClose)                 \
  X(virConnectListAllDomains)        \
  X(virConnectOpen)                  \
  X(virDomainFree)                   \
  X(virDomainGetEmulatorPinInfo)     \
  X(virDomainGetID)                  \
  X(virDomainGetIOThreadInfo)        \
  X(virDomainGetName)                \
  X(virDomainGetState)               \
  X(virDomainGetUUIDString)          \
  X(virDomainGetVcpuPinInfo)         \
  X(virDomainGetVcpusFlags)          \
  X(virDomainGetXMLDesc)             \
  X(virDomainIOThreadInfoFree)       \
  X(virDomainIsActive)               \
  X(virDomainLookupByUUIDString)     \
  X(virDomainPinEmulator)            \
  X(virDomainPinIOThread)            \
  X(virDomainPinVcpuFlags)           \
  X(virGetLastErrorMessage)          \
  X(virNodeGetCPUMap)                \
  X(virResetLastError)               \
  X(virSetErrorFunc)

struct Api {
#define VCPUMAP_DECLARE(name) decltype(&::name) name = nullptr;
  VCPUMAP_LIBVIRT_FUNCTIONS(VCPUMAP_DECLARE)
#undef VCPUMAP_DECLARE
};

constexpr const char* kLibrary = "libvirt.so.0";

// Loads libvirt once; the error says what is missing.
const Result<Api>& load_api() {
  static const Result<Api> loaded = []() -> Result<Api> {
    void* library = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      return make_error(ExitCode::failure,
                        "cannot load {} ({}): install libvirt0, or use --no-libvirt", kLibrary,
                        ::dlerror());
    }
    Api api;
#define VCPUMAP_RESOLVE(name)                                                                 \
  api.name = reinterpret_cast<decltype(api.name)>(::dlsym(library, #name));                   \
  if (api.name == nullptr) {                                                                  \
    return make_error(ExitCode::failure, "{} has no {}: libvirt is older than vcpumap needs", \
                      kLibrary, #name);                                                       \
  }
    VCPUMAP_LIBVIRT_FUNCTIONS(VCPUMAP_RESOLVE)
#undef VCPUMAP_RESOLVE
    return api;  // the library stays loaded for the life of the process
  }();
  return loaded;
}

// The loaded functions; only called once Connection::open has loaded them.
const Api& api() {
  return *load_api();
}

// libvirt prints every error on stderr unless told otherwise; we report them ourselves.
void ignore_error(void*, virErrorPtr) {}

std::string last_error() {
  const char* message = api().virGetLastErrorMessage();
  return message != nullptr ? message : "unknown libvirt error";
}

// virsh's words for domain states (virshDomainStateToString).
std::string state_name(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "idle";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "in shutdown";
    case VIR_DOMAIN_SHUTOFF:
      return "shut off";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "pmsuspended";
    default:
      return "no state";
  }
}

CpuSet from_cpumap(const unsigned char* map, int maplen) {
  CpuSet set;
  for (int byte = 0; byte < maplen; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      if (map[byte] & (1U << bit)) set.add(byte * 8 + bit);
    }
  }
  return set;
}

std::vector<unsigned char> to_cpumap(const CpuSet& cpus, int maplen) {
  std::vector<unsigned char> map(static_cast<std::size_t>(maplen), 0);
  for (const int cpu : cpus.cpus()) {
    if (cpu / 8 < maplen) map[static_cast<std::size_t>(cpu / 8)] |= 1U << (cpu % 8);
  }
  return map;
}

unsigned int flags_for(Scope scope) {
  switch (scope) {
    case Scope::current:
      return VIR_DOMAIN_AFFECT_CURRENT;
    case Scope::live:
      return VIR_DOMAIN_AFFECT_LIVE;
    case Scope::config:
      return VIR_DOMAIN_AFFECT_CONFIG;
    case Scope::live_and_config:
      return static_cast<unsigned>(VIR_DOMAIN_AFFECT_LIVE) |
             static_cast<unsigned>(VIR_DOMAIN_AFFECT_CONFIG);
  }
  return VIR_DOMAIN_AFFECT_CURRENT;
}

struct DomainFree {
  void operator()(virDomainPtr domain) const { api().virDomainFree(domain); }
};
using Domain = std::unique_ptr<virDomain, DomainFree>;

}  // namespace

struct Connection::Handle {
  virConnectPtr connection = nullptr;
  int host_cpus = 0;  // libvirt's host CPU count, sizes every cpumap
  ~Handle() {
    if (connection != nullptr) api().virConnectClose(connection);
  }
};

Connection::Connection(std::unique_ptr<Handle> handle, std::string uri)
    : handle_(std::move(handle)), uri_(std::move(uri)) {}

Connection::~Connection() = default;

Result<std::unique_ptr<Connection>> Connection::open(const std::string& uri) {
  std::string target = uri;
  if (target.empty()) {
    if (const char* from_env = std::getenv("LIBVIRT_DEFAULT_URI"); from_env && *from_env) {
      target = from_env;
    } else {
      // Only where a daemon listens: connecting elsewhere would just fail more slowly.
      std::error_code error;
      const bool listening = std::filesystem::exists("/run/libvirt/libvirt-sock", error) ||
                             std::filesystem::exists("/run/libvirt/virtqemud-sock", error);
      if (!listening) {
        return make_error(ExitCode::failure, "no libvirt daemon socket in /run/libvirt");
      }
      target = "qemu:///system";
    }
  }
  if (const auto& loaded = load_api(); !loaded) return loaded.error();
  api().virSetErrorFunc(nullptr, ignore_error);
  virConnectPtr connection = api().virConnectOpen(target.c_str());
  if (connection == nullptr) {
    return make_error(ExitCode::failure, "cannot connect to libvirt at {}: {}", target,
                      last_error());
  }
  auto handle = std::make_unique<Handle>();
  handle->connection = connection;
  handle->host_cpus = api().virNodeGetCPUMap(connection, nullptr, nullptr, 0);
  if (handle->host_cpus <= 0) handle->host_cpus = 1;
  return std::unique_ptr<Connection>(new Connection(std::move(handle), target));
}

Result<std::vector<LibvirtDomain>> Connection::list_domains() const {
  virDomainPtr* raw = nullptr;
  const int count = api().virConnectListAllDomains(handle_->connection, &raw, 0);
  if (count < 0) {
    return make_error(ExitCode::failure, "libvirt at {} did not list domains: {}", uri_,
                      last_error());
  }
  std::vector<Domain> domains;
  for (int i = 0; i < count; ++i) domains.emplace_back(raw[i]);
  std::free(raw);

  const int maplen = VIR_CPU_MAPLEN(handle_->host_cpus);
  std::vector<LibvirtDomain> result;
  for (const auto& domain : domains) {
    LibvirtDomain info;
    const char* name = api().virDomainGetName(domain.get());
    if (name == nullptr) continue;  // undefined while we looked
    info.name = name;
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (api().virDomainGetUUIDString(domain.get(), uuid) == 0) info.uuid = uuid;
    int state = 0;
    int reason = 0;
    if (api().virDomainGetState(domain.get(), &state, &reason, 0) == 0)
      info.state = state_name(state);
    info.active = api().virDomainIsActive(domain.get()) == 1;
    if (info.active) info.id = static_cast<int>(api().virDomainGetID(domain.get()));

    // Pinning as the definition that applies now says (live when running): what virsh shows.
    const int max_vcpus = api().virDomainGetVcpusFlags(
        domain.get(), static_cast<unsigned>(VIR_DOMAIN_AFFECT_CURRENT) |
                          static_cast<unsigned>(VIR_DOMAIN_VCPU_MAXIMUM));
    info.vcpus = api().virDomainGetVcpusFlags(domain.get(), VIR_DOMAIN_AFFECT_CURRENT);
    if (max_vcpus > 0) {
      std::vector<unsigned char> maps(static_cast<std::size_t>(max_vcpus * maplen), 0);
      const int got = api().virDomainGetVcpuPinInfo(domain.get(), max_vcpus, maps.data(), maplen,
                                                    VIR_DOMAIN_AFFECT_CURRENT);
      for (int vcpu = 0; vcpu < got; ++vcpu) {
        info.vcpu_pins.push_back(
            from_cpumap(&maps[static_cast<std::size_t>(vcpu * maplen)], maplen));
      }
    }
    std::vector<unsigned char> emulator(static_cast<std::size_t>(maplen), 0);
    if (api().virDomainGetEmulatorPinInfo(domain.get(), emulator.data(), maplen,
                                          VIR_DOMAIN_AFFECT_CURRENT) >= 0) {
      info.emulator_pin = from_cpumap(emulator.data(), maplen);
    }
    virDomainIOThreadInfoPtr* iothreads = nullptr;
    const int iothread_count =
        api().virDomainGetIOThreadInfo(domain.get(), &iothreads, VIR_DOMAIN_AFFECT_CURRENT);
    for (int i = 0; i < iothread_count; ++i) {
      info.iothreads.emplace_back(static_cast<int>(iothreads[i]->iothread_id),
                                  from_cpumap(iothreads[i]->cpumap, iothreads[i]->cpumaplen));
      api().virDomainIOThreadInfoFree(iothreads[i]);
    }
    std::free(iothreads);
    if (char* xml = api().virDomainGetXMLDesc(domain.get(), 0)) {
      info.nova = parse_nova_metadata(xml);
      std::free(xml);
    }
    result.push_back(std::move(info));
  }
  api().virResetLastError();
  return result;
}

namespace {

Result<Domain> lookup(virConnectPtr connection, const std::string& uuid) {
  Domain domain(api().virDomainLookupByUUIDString(connection, uuid.c_str()));
  if (!domain) {
    return make_error(ExitCode::bad_input, "libvirt has no domain with UUID {}: {}", uuid,
                      last_error());
  }
  return domain;
}

Status pin_result(int rc, std::string_view what) {
  if (rc < 0)
    return make_error(ExitCode::failure, "libvirt refused to pin {}: {}", what, last_error());
  return Ok{};
}

}  // namespace

Status Connection::pin_vcpu(const std::string& uuid, int vcpu, const CpuSet& cpus,
                            Scope scope) const {
  auto domain = lookup(handle_->connection, uuid);
  if (!domain) return domain.error();
  const int maplen = VIR_CPU_MAPLEN(std::max(handle_->host_cpus, cpus.end()));
  auto map = to_cpumap(cpus, maplen);
  return pin_result(api().virDomainPinVcpuFlags(domain->get(), static_cast<unsigned>(vcpu),
                                                map.data(), maplen, flags_for(scope)),
                    fmt::format("vCPU {}", vcpu));
}

Status Connection::pin_emulator(const std::string& uuid, const CpuSet& cpus, Scope scope) const {
  auto domain = lookup(handle_->connection, uuid);
  if (!domain) return domain.error();
  const int maplen = VIR_CPU_MAPLEN(std::max(handle_->host_cpus, cpus.end()));
  auto map = to_cpumap(cpus, maplen);
  return pin_result(api().virDomainPinEmulator(domain->get(), map.data(), maplen, flags_for(scope)),
                    "the emulator threads");
}

Status Connection::pin_iothread(const std::string& uuid, int iothread, const CpuSet& cpus,
                                Scope scope) const {
  auto domain = lookup(handle_->connection, uuid);
  if (!domain) return domain.error();
  const int maplen = VIR_CPU_MAPLEN(std::max(handle_->host_cpus, cpus.end()));
  auto map = to_cpumap(cpus, maplen);
  return pin_result(api().virDomainPinIOThread(domain->get(), static_cast<unsigned>(iothread),
                                               map.data(), maplen, flags_for(scope)),
                    fmt::format("I/O thread {}", iothread));
}

}  // namespace vcpumap::libvirt
