#include "sources/libvirt/session.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include "sources/libvirt/domain_xml.h"

namespace vcpumap::libvirt {
namespace {

constexpr const char* kLibrary = "libvirt.so.0";

// libvirt prints every error on stderr unless told otherwise; we report them ourselves.
void ignore_error(void*, virErrorPtr) {}

}  // namespace

// Never destroyed: a call thread left blocked in libvirt may still run while the process exits.
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

std::string last_error() {
  const char* message = api().virGetLastErrorMessage();
  return message != nullptr ? message : "unknown libvirt error";
}

namespace {

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

}  // namespace

CpuSet from_cpumap(const unsigned char* map, int maplen) {
  CpuSet set;
  for (int byte = 0; byte < maplen; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      if (map[byte] & (1U << bit)) set.add(byte * 8 + bit);
    }
  }
  return set;
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

Result<std::string> resolve_uri(const std::string& uri) {
  if (!uri.empty()) return uri;
  if (const char* from_env = std::getenv("LIBVIRT_DEFAULT_URI"); from_env && *from_env) {
    return std::string(from_env);
  }
  // Only where a daemon listens: connecting elsewhere would just fail more slowly.
  std::error_code error;
  const bool listening = std::filesystem::exists("/run/libvirt/libvirt-sock", error) ||
                         std::filesystem::exists("/run/libvirt/virtqemud-sock", error);
  if (!listening) return make_error(ExitCode::failure, "no libvirt daemon socket in /run/libvirt");
  return std::string("qemu:///system");
}

Result<std::shared_ptr<Session>> open_session(const std::string& target,
                                              std::shared_ptr<std::atomic<std::uint64_t>> calls) {
  api().virSetErrorFunc(nullptr, ignore_error);
  auto session = std::make_shared<Session>();
  session->calls = std::move(calls);
  session->connection = session->rpc(api().virConnectOpen, target.c_str());
  if (session->connection == nullptr) {
    return make_error(ExitCode::failure, "libvirt ({}) cannot be reached: {}", target,
                      last_error());
  }
  unsigned char* map = nullptr;
  unsigned int online = 0;
  session->host_cpus = session->rpc(api().virNodeGetCPUMap, session->connection, &map, &online, 0U);
  if (session->host_cpus <= 0) session->host_cpus = 1;
  session->online = map != nullptr ? from_cpumap(map, VIR_CPU_MAPLEN(session->host_cpus))
                                   : CpuSet::first_n(session->host_cpus);
  std::free(map);
  return session;
}

Result<std::vector<LibvirtDomain>> list_all(Session& session, const std::string& uri) {
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
    api().virTypedParamsGetInt(records[i]->params, records[i]->nparams, "state.state", &state);
    result.push_back(describe_domain(session, records[i]->dom, state));
  }
  api().virDomainStatsRecordListFree(records);
  api().virResetLastError();
  return result;
}

Result<std::optional<LibvirtDomain>> describe_one(Session& session, const std::string& uuid,
                                                  const std::string& uri) {
  virDomainPtr domain =
      session.rpc(api().virDomainLookupByUUIDString, session.connection, uuid.c_str());
  if (domain == nullptr) {
    if (api().virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
      api().virResetLastError();
      return std::optional<LibvirtDomain>();
    }
    return make_error(ExitCode::failure, "libvirt ({}) did not describe domain {}: {}", uri, uuid,
                      last_error());
  }
  int state = VIR_DOMAIN_NOSTATE;
  int reason = 0;
  if (session.rpc(api().virDomainGetState, domain, &state, &reason, 0U) < 0) {
    state = VIR_DOMAIN_NOSTATE;
  }
  // The lookup's answer carries the domain's id (-1 when inactive), as a listing's does.
  auto info = describe_domain(session, domain, state);
  api().virDomainFree(domain);
  api().virResetLastError();
  return std::optional<LibvirtDomain>(std::move(info));
}

}  // namespace vcpumap::libvirt
