#include "sources/libvirt/libvirt.h"

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include <fmt/format.h>

#include "sources/libvirt/call_thread.h"
#include "sources/libvirt/domain_xml.h"

namespace vcpumap::libvirt {
namespace {

// libvirt is loaded when a connection is first opened, not linked: linking it costs every run of
// vcpumap about 20 ms of start-up (its and its dependencies' constructors and relocations,
// measured in BENCHMARKS.md), even with --no-libvirt, and hosts without libvirt (Firecracker,
// cloud-hypervisor) would need it installed. The headers still type every call.
#define VCPUMAP_LIBVIRT_FUNCTIONS(X) \
  X(virConnectClose)                 \
  X(virConnectGetAllDomainStats)     \
  X(virConnectOpen)                  \
  X(virDomainFree)                   \
  X(virDomainGetEmulatorPinInfo)     \
  X(virDomainGetID)                  \
  X(virDomainGetIOThreadInfo)        \
  X(virDomainGetName)                \
  X(virDomainGetUUIDString)          \
  X(virDomainGetVcpuPinInfo)         \
  X(virDomainGetXMLDesc)             \
  X(virDomainIOThreadInfoFree)       \
  X(virDomainLookupByUUIDString)     \
  X(virDomainPinEmulator)            \
  X(virDomainPinIOThread)            \
  X(virDomainPinVcpuFlags)           \
  X(virGetLastErrorMessage)          \
  X(virNodeGetCPUMap)                \
  X(virResetLastError)               \
  X(virSetErrorFunc)                 \
  X(virDomainStatsRecordListFree)    \
  X(virTypedParamsGetInt)

struct Api {
#define VCPUMAP_DECLARE(name) decltype(&::name) name = nullptr;
  VCPUMAP_LIBVIRT_FUNCTIONS(VCPUMAP_DECLARE)
#undef VCPUMAP_DECLARE
};

constexpr const char* kLibrary = "libvirt.so.0";

// Loads libvirt once; the error says what is missing. Never destroyed: a call thread left blocked
// in libvirt may still be running while the process exits.
const Result<Api>& load_api() {
  static const Result<Api>* const loaded = new Result<Api>([]() -> Result<Api> {
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
  }());
  return *loaded;
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

struct Connection::Handle {
  std::shared_ptr<Session> session;
  std::shared_ptr<std::atomic<std::uint64_t>> calls;
  std::unique_ptr<CallThread> thread;
  std::chrono::milliseconds timeout{0};
};

namespace {

std::string seconds_text(std::chrono::milliseconds timeout) {
  return fmt::format("{:g} s", static_cast<double>(timeout.count()) / 1000.0);
}

Error no_answer(const std::string& uri, std::chrono::milliseconds timeout) {
  return make_error(ExitCode::failure, "libvirt ({}) did not answer in {}", uri,
                    seconds_text(timeout));
}

// Runs `job` on the connection's call thread, bounded by its timeout.
template <typename T>
Result<T> bounded(const Connection::Handle& handle, const std::string& uri,
                  std::function<Result<T>(Session&)> job) {
  auto answer = handle.thread->call<Result<T>>(
      [session = handle.session, job = std::move(job)] { return job(*session); });
  if (!answer) return no_answer(uri, handle.timeout);
  return std::move(*answer);
}

}  // namespace

Connection::Connection(std::unique_ptr<Handle> handle, std::string uri)
    : handle_(std::move(handle)), uri_(std::move(uri)) {}

Connection::~Connection() {
  // The session's last reference goes to the call thread, which closes the connection there:
  // virConnectClose is an RPC too, and may block like any other.
  handle_->thread->post([session = std::move(handle_->session)] {});
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& uri,
                                                     std::chrono::milliseconds timeout) {
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
  auto handle = std::make_unique<Handle>();
  handle->timeout = timeout;
  handle->calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  handle->thread = std::make_unique<CallThread>(timeout, handle->calls);
  auto opened = handle->thread->call<Result<std::shared_ptr<Session>>>(
      [target, calls = handle->calls]() -> Result<std::shared_ptr<Session>> {
        api().virSetErrorFunc(nullptr, ignore_error);
        auto session = std::make_shared<Session>();
        session->calls = calls;
        session->connection = session->rpc(api().virConnectOpen, target.c_str());
        if (session->connection == nullptr) {
          return make_error(ExitCode::failure, "libvirt ({}) cannot be reached: {}", target,
                            last_error());
        }
        unsigned char* map = nullptr;
        unsigned int online = 0;
        session->host_cpus =
            session->rpc(api().virNodeGetCPUMap, session->connection, &map, &online, 0U);
        if (session->host_cpus <= 0) session->host_cpus = 1;
        session->online = map != nullptr ? from_cpumap(map, VIR_CPU_MAPLEN(session->host_cpus))
                                         : CpuSet::first_n(session->host_cpus);
        std::free(map);
        return session;
      });
  if (!opened) return no_answer(target, timeout);
  if (!*opened) return opened->error();
  handle->session = std::move(**opened);
  return std::unique_ptr<Connection>(new Connection(std::move(handle), target));
}

std::uint64_t Connection::calls() const {
  return handle_->calls->load(std::memory_order_relaxed);
}

namespace {

// One domain of a bulk listing: its XML, and a call of its own only for what the XML can't say.
LibvirtDomain describe_domain(Session& session, virDomainPtr domain, int state) {
  LibvirtDomain info;
  if (const char* name = api().virDomainGetName(domain)) info.name = name;  // no RPC: cached
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (api().virDomainGetUUIDString(domain, uuid) == 0) info.uuid = uuid;
  info.state = state_name(state);
  const unsigned int id = api().virDomainGetID(domain);  // as listed, no RPC
  info.active = id != static_cast<unsigned int>(-1);
  if (info.active) info.id = static_cast<int>(id);

  const int maplen = VIR_CPU_MAPLEN(session.host_cpus);
  std::optional<DomainDefinition> definition;
  if (char* xml = session.rpc(api().virDomainGetXMLDesc, domain, 0U)) {
    definition = parse_domain_xml(xml);
    std::free(xml);
  }
  if (definition) {
    info.vcpus = definition->vcpus;
    info.nova = definition->nova;
  }
  if (definition && !definition->auto_placement) {
    info.vcpu_pins = vcpu_pins(*definition, session.online);
    info.emulator_pin = emulator_pin(*definition, session.online);
  } else {
    // numad's placement (or an XML we could not read): only libvirt knows what it chose.
    const int max_vcpus = definition ? definition->max_vcpus : 0;
    if (max_vcpus > 0) {
      std::vector<unsigned char> maps(static_cast<std::size_t>(max_vcpus * maplen), 0);
      const int got = session.rpc(api().virDomainGetVcpuPinInfo, domain, max_vcpus, maps.data(),
                                  maplen, static_cast<unsigned>(VIR_DOMAIN_AFFECT_CURRENT));
      for (int vcpu = 0; vcpu < got; ++vcpu) {
        info.vcpu_pins.push_back(
            from_cpumap(&maps[static_cast<std::size_t>(vcpu * maplen)], maplen));
      }
    }
    std::vector<unsigned char> emulator(static_cast<std::size_t>(maplen), 0);
    if (session.rpc(api().virDomainGetEmulatorPinInfo, domain, emulator.data(), maplen,
                    static_cast<unsigned>(VIR_DOMAIN_AFFECT_CURRENT)) >= 0) {
      info.emulator_pin = from_cpumap(emulator.data(), maplen);
    }
  }
  // A running domain's I/O threads' affinity is the threads' own (libvirt asks QEMU and the
  // kernel), not in the XML: asked only of domains that have I/O threads.
  if (definition && definition->iothreads > 0) {
    virDomainIOThreadInfoPtr* iothreads = nullptr;
    const int count = session.rpc(api().virDomainGetIOThreadInfo, domain, &iothreads,
                                  static_cast<unsigned>(VIR_DOMAIN_AFFECT_CURRENT));
    for (int i = 0; i < count; ++i) {
      info.iothreads.emplace_back(static_cast<int>(iothreads[i]->iothread_id),
                                  from_cpumap(iothreads[i]->cpumap, iothreads[i]->cpumaplen));
      api().virDomainIOThreadInfoFree(iothreads[i]);
    }
    std::free(iothreads);
  }
  return info;
}

}  // namespace

Result<std::vector<LibvirtDomain>> Connection::list_domains() const {
  return bounded<std::vector<LibvirtDomain>>(
      *handle_, uri_, [uri = uri_](Session& session) -> Result<std::vector<LibvirtDomain>> {
        // One call for every domain, active and inactive, with its state.
        virDomainStatsRecordPtr* records = nullptr;
        const int count = session.rpc(api().virConnectGetAllDomainStats, session.connection,
                                      static_cast<unsigned>(VIR_DOMAIN_STATS_STATE), &records, 0U);
        if (count < 0) {
          return make_error(ExitCode::failure, "libvirt ({}) did not list domains: {}", uri,
                            last_error());
        }
        std::vector<LibvirtDomain> result;
        for (int i = 0; i < count; ++i) {
          int state = VIR_DOMAIN_NOSTATE;
          api().virTypedParamsGetInt(records[i]->params, records[i]->nparams, "state.state",
                                     &state);
          result.push_back(describe_domain(session, records[i]->dom, state));
        }
        api().virDomainStatsRecordListFree(records);
        api().virResetLastError();
        return result;
      });
}

namespace {

Result<Domain> lookup(Session& session, const std::string& uuid) {
  Domain domain(session.rpc(api().virDomainLookupByUUIDString, session.connection, uuid.c_str()));
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

namespace {

// Looks the domain up and makes one pin call with the CPUs as libvirt's cpumap.
using PinCall = std::function<int(virDomainPtr, unsigned char* map, int maplen)>;
Status pin_bounded(const Connection::Handle& handle, const std::string& uri,
                   const std::string& uuid, const CpuSet& cpus, std::string what, PinCall pin) {
  return bounded<Ok>(handle, uri, [uuid, cpus, what, pin](Session& session) -> Status {
    auto domain = lookup(session, uuid);
    if (!domain) return domain.error();
    const int maplen = VIR_CPU_MAPLEN(std::max(session.host_cpus, cpus.end()));
    auto map = to_cpumap(cpus, maplen);
    return pin_result(session.rpc(pin, domain->get(), map.data(), maplen), what);
  });
}

}  // namespace

Status Connection::pin_vcpu(const std::string& uuid, int vcpu, const CpuSet& cpus,
                            Scope scope) const {
  return pin_bounded(*handle_, uri_, uuid, cpus, fmt::format("vCPU {}", vcpu),
                     [vcpu, scope](virDomainPtr domain, unsigned char* map, int maplen) {
                       return api().virDomainPinVcpuFlags(domain, static_cast<unsigned>(vcpu), map,
                                                          maplen, flags_for(scope));
                     });
}

Status Connection::pin_emulator(const std::string& uuid, const CpuSet& cpus, Scope scope) const {
  return pin_bounded(*handle_, uri_, uuid, cpus, "the emulator threads",
                     [scope](virDomainPtr domain, unsigned char* map, int maplen) {
                       return api().virDomainPinEmulator(domain, map, maplen, flags_for(scope));
                     });
}

Status Connection::pin_iothread(const std::string& uuid, int iothread, const CpuSet& cpus,
                                Scope scope) const {
  return pin_bounded(*handle_, uri_, uuid, cpus, fmt::format("I/O thread {}", iothread),
                     [iothread, scope](virDomainPtr domain, unsigned char* map, int maplen) {
                       return api().virDomainPinIOThread(domain, static_cast<unsigned>(iothread),
                                                         map, maplen, flags_for(scope));
                     });
}

}  // namespace vcpumap::libvirt
