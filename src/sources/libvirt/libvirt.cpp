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
#include "sources/libvirt/session.h"

namespace vcpumap::libvirt {
namespace {

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
  auto resolved = resolve_uri(uri);
  if (!resolved) return resolved.error();
  const std::string target = std::move(*resolved);
  if (const auto& loaded = load_api(); !loaded) return loaded.error();
  auto handle = std::make_unique<Handle>();
  handle->timeout = timeout;
  handle->calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  handle->thread = std::make_unique<CallThread>(timeout, handle->calls);
  auto opened = handle->thread->call<Result<std::shared_ptr<Session>>>(
      [target, calls = handle->calls] { return open_session(target, calls); });
  if (!opened) return no_answer(target, timeout);
  if (!*opened) return opened->error();
  handle->session = std::move(**opened);
  return std::unique_ptr<Connection>(new Connection(std::move(handle), target));
}

std::uint64_t Connection::calls() const {
  return handle_->calls->load(std::memory_order_relaxed);
}

Result<std::vector<LibvirtDomain>> Connection::list_domains() const {
  return bounded<std::vector<LibvirtDomain>>(
      *handle_, uri_, [uri = uri_](Session& session) { return list_all(session, uri); });
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
