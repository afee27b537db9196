#include "sources/libvirt/watcher.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "sources/libvirt/session.h"

namespace vcpumap::libvirt {

struct Watcher::State {
  std::string uri;
  std::chrono::milliseconds timeout{2000};
  mutable std::mutex mutex;
  mutable std::condition_variable wake;
  bool stopping = false;
  bool relist = false;             // list every domain (a new connection)
  std::set<std::string> changed;   // the UUIDs of domains an event named: describe those again
  bool closed = false;             // libvirt closed the connection (keepalive timeout, daemon gone)
  bool keepalive_timeout = false;  // ... because the daemon stopped answering
  bool exited = false;             // the watcher thread has ended
  bool listed_once = false;
  std::uint64_t listings = 0;
  // Set while the watcher waits in a call: past the timeout the view says libvirt is down.
  std::optional<std::chrono::steady_clock::time_point> call_since;
  std::shared_ptr<const std::vector<LibvirtDomain>> domains;
  bool up = false;
  std::optional<std::chrono::system_clock::time_point> last_success;
  std::string problem;
  bool absent = false;
  std::shared_ptr<std::atomic<std::uint64_t>> calls =
      std::make_shared<std::atomic<std::uint64_t>>(0);
  std::atomic<bool> loop_stopping{false};

  void mark_changed(virDomainPtr domain) {
    char uuid[VIR_UUID_STRING_BUFLEN];
    const bool named = api().virDomainGetUUIDString(domain, uuid) == 0;  // no RPC: in the event
    std::lock_guard lock(mutex);
    if (named) {
      changed.insert(uuid);
    } else {
      relist = true;
    }
    wake.notify_all();
  }
  void mark_closed(bool by_keepalive) {
    std::lock_guard lock(mutex);
    closed = true;
    keepalive_timeout = by_keepalive;
    wake.notify_all();
  }
  // Waits up to `delay`; false when stopping.
  bool pause(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex);
    return !wake.wait_for(lock, delay, [&] { return stopping; });
  }
  void set_down(std::string why) {
    std::lock_guard lock(mutex);
    up = false;
    problem = std::move(why);
  }
};

namespace {

using State = Watcher::State;

// libvirt's callbacks run on the event-loop thread; they only say which domain changed, the
// watcher thread does the calls. Each event type has its own signature (libvirt casts them back).
void on_lifecycle(virConnectPtr, virDomainPtr domain, int, int, void* opaque) {
  static_cast<State*>(opaque)->mark_changed(domain);
}
void on_tunable(virConnectPtr, virDomainPtr domain, virTypedParameterPtr, int, void* opaque) {
  static_cast<State*>(opaque)->mark_changed(domain);
}
void on_metadata(virConnectPtr, virDomainPtr domain, int, const char*, void* opaque) {
  static_cast<State*>(opaque)->mark_changed(domain);
}
void on_device(virConnectPtr, virDomainPtr domain, const char*, void* opaque) {
  static_cast<State*>(opaque)->mark_changed(domain);
}
void on_close(virConnectPtr, int reason, void* opaque) {
  static_cast<State*>(opaque)->mark_closed(reason == VIR_CONNECT_CLOSE_REASON_KEEPALIVE);
}

// The events whose facts vcpumap shows: ids and states (lifecycle), vcpupin/emulatorpin/
// iothreadpin (tunable: virsh vcpupin --live sends cputune.*), nova's names (metadata), and vCPU or
// I/O thread hot-plug (device added/removed).
struct EventSpec {
  int id;
  virConnectDomainEventGenericCallback callback;
};
const EventSpec kEvents[] = {
    {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle)},
    {VIR_DOMAIN_EVENT_ID_TUNABLE, VIR_DOMAIN_EVENT_CALLBACK(on_tunable)},
    {VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, VIR_DOMAIN_EVENT_CALLBACK(on_metadata)},
    {VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_CALLBACK(on_device)},
    {VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(on_device)},
};

void wake_event_loop(int timer, void*) {
  api().virEventRemoveTimeout(timer);
}

// libvirt's default event loop, needed for keepalive and events; registered once per process,
// before any connection that uses them is opened.
Status register_event_loop() {
  static const bool registered = load_api() && api().virEventRegisterDefaultImpl() == 0;
  if (!registered) return make_error(ExitCode::failure, "libvirt's event loop did not start");
  return Ok{};
}

void run_event_loop(const std::shared_ptr<State>& state) {
  while (!state->loop_stopping.load()) {
    if (api().virEventRunDefaultImpl() < 0) break;
  }
}

// Runs `call` with the state saying a call is in flight, so the view can time it out.
template <typename F>
auto timed_call(State& state, F call) {
  {
    std::lock_guard lock(state.mutex);
    state.call_since = std::chrono::steady_clock::now();
  }
  auto result = call();
  std::lock_guard lock(state.mutex);
  state.call_since.reset();
  return result;
}

std::vector<LibvirtDomain> current_domains(State& state) {
  std::lock_guard lock(state.mutex);
  return state.domains ? *state.domains : std::vector<LibvirtDomain>();
}

// `domains` with each domain of `changed` described afresh: replaced, added, or dropped when
// libvirt no longer has it.
Result<std::vector<LibvirtDomain>> refreshed(Session& session, const std::string& target,
                                             std::vector<LibvirtDomain> domains,
                                             const std::set<std::string>& changed) {
  for (const auto& uuid : changed) {
    auto described = describe_one(session, uuid, target);
    if (!described) return described.error();
    auto found = std::find_if(domains.begin(), domains.end(),
                              [&](const LibvirtDomain& domain) { return domain.uuid == uuid; });
    if (!*described) {
      if (found != domains.end()) domains.erase(found);
    } else if (found != domains.end()) {
      *found = std::move(**described);
    } else {
      domains.push_back(std::move(**described));
    }
  }
  return domains;
}

// One connection's life: subscribe, list, then on every event describe again the domain it
// names, until the connection closes.
void watch_session(State& state, Session& session, const std::string& target) {
  // keepalive: a daemon that stops answering is noticed after about interval * (count + 1) s,
  // also while no call is in flight (libvirt's virkeepalive.c).
  const int interval = std::max(1, static_cast<int>(state.timeout.count() / 2000));
  session.rpc(api().virConnectSetKeepAlive, session.connection, interval, 1U);
  session.rpc(api().virConnectRegisterCloseCallback, session.connection, on_close,
              static_cast<void*>(&state), nullptr);
  std::vector<int> registered;
  for (const auto& event : kEvents) {
    const int id = session.rpc(api().virConnectDomainEventRegisterAny, session.connection, nullptr,
                               event.id, event.callback, static_cast<void*>(&state), nullptr);
    if (id >= 0) registered.push_back(id);
  }
  {
    std::lock_guard lock(state.mutex);
    state.relist = true;
  }
  for (;;) {
    bool relist = false;
    std::set<std::string> changed;
    {
      std::unique_lock lock(state.mutex);
      state.wake.wait(lock, [&] {
        return state.stopping || state.relist || !state.changed.empty() || state.closed;
      });
      if (state.stopping || state.closed) break;
      relist = std::exchange(state.relist, false);
      changed = std::exchange(state.changed, {});
    }
    // A new connection lists everything; an event names its domain, and only that one is asked
    // again (a lookup, its state, its XML), whatever the number of domains.
    auto updated = timed_call(state, [&]() -> Result<std::vector<LibvirtDomain>> {
      if (relist) return list_all(session, target);
      return refreshed(session, target, current_domains(state), changed);
    });
    std::lock_guard lock(state.mutex);
    if (!updated) {
      state.up = false;
      state.problem = updated.error().message;
      break;
    }
    state.domains = std::make_shared<const std::vector<LibvirtDomain>>(std::move(*updated));
    state.up = true;
    state.last_success = std::chrono::system_clock::now();
    state.problem.clear();
    state.listed_once = true;
    if (relist) ++state.listings;
    state.wake.notify_all();
  }
  for (const int id : registered) {
    api().virConnectDomainEventDeregisterAny(session.connection, id);
  }
  api().virConnectUnregisterCloseCallback(session.connection, on_close);
}

void watch(const std::shared_ptr<State>& state) {
  auto backoff = std::chrono::milliseconds(250);
  constexpr auto kMaxBackoff = std::chrono::milliseconds(4000);
  for (;;) {
    {
      std::lock_guard lock(state->mutex);
      if (state->stopping) return;
      state->closed = false;
    }
    auto target = resolve_uri(state->uri);
    {
      std::lock_guard lock(state->mutex);
      state->absent = !target;
    }
    if (!target) {
      state->set_down(target.error().message);
    } else {
      // Blocks while the daemon does not answer (SIGSTOP, a hung socket); the view says down
      // once the timeout passes, and this goes on as soon as the daemon answers again.
      auto session = timed_call(*state, [&] { return open_session(*target, state->calls); });
      if (session) {
        backoff = std::chrono::milliseconds(250);
        watch_session(*state, **session, *target);
        bool by_keepalive = false;
        {
          std::lock_guard lock(state->mutex);
          by_keepalive = state->keepalive_timeout;
        }
        state->set_down(by_keepalive
                            ? fmt::format("libvirt ({}) did not answer in {:g} s", *target,
                                          static_cast<double>(state->timeout.count()) / 1000.0)
                            : fmt::format("libvirt ({}) closed the connection", *target));
        timed_call(*state, [&] {
          session.value().reset();  // virConnectClose, also an RPC
          return 0;
        });
      } else {
        state->set_down(session.error().message);
      }
    }
    if (!state->pause(backoff)) return;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace

Watcher::Watcher(std::string uri, std::chrono::milliseconds timeout)
    : state_(std::make_shared<State>()) {
  state_->uri = std::move(uri);
  state_->timeout = timeout;
  if (auto loaded = load_api(); !loaded) {
    state_->problem = loaded.error().message;
    state_->absent = true;
    return;
  }
  if (auto loop = register_event_loop(); !loop) {
    state_->problem = loop.error().message;
    return;
  }
  event_loop_ = std::thread([state = state_] { run_event_loop(state); });
  watcher_ = std::thread([state = state_] {
    watch(state);
    std::lock_guard lock(state->mutex);
    state->exited = true;
    state->wake.notify_all();
  });
}

Watcher::~Watcher() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    state_->wake.notify_all();
  }
  if (watcher_.joinable()) {
    // The watcher ends at once unless it waits in a call; a daemon that does not answer keeps
    // it there, and then it is left to end alone (it owns the state it touches).
    std::unique_lock lock(state_->mutex);
    const bool ended = !state_->call_since &&
                       state_->wake.wait_for(lock, state_->timeout, [&] { return state_->exited; });
    lock.unlock();
    if (ended) {
      watcher_.join();
    } else {
      watcher_.detach();
    }
  }
  if (event_loop_.joinable()) {
    state_->loop_stopping = true;
    api().virEventAddTimeout(0, wake_event_loop, nullptr, nullptr);
    event_loop_.join();
  }
}

WatchedView Watcher::view() const {
  std::lock_guard lock(state_->mutex);
  WatchedView view;
  view.domains = state_->domains;
  view.up = state_->up;
  view.problem = state_->problem;
  view.absent = state_->absent;
  if (state_->call_since &&
      std::chrono::steady_clock::now() - *state_->call_since > state_->timeout) {
    view.up = false;
    view.problem = fmt::format("libvirt ({}) did not answer in {:g} s",
                               state_->uri.empty() ? "qemu:///system" : state_->uri,
                               static_cast<double>(state_->timeout.count()) / 1000.0);
  }
  view.last_success = state_->last_success;
  view.calls = state_->calls->load(std::memory_order_relaxed);
  view.listings = state_->listings;
  return view;
}

void Watcher::wait_first_listing() const {
  std::unique_lock lock(state_->mutex);
  // A little past the timeout, so that a daemon that does not answer is said so.
  state_->wake.wait_for(lock, state_->timeout + std::chrono::milliseconds(100),
                        [&] { return state_->listed_once; });
}

}  // namespace vcpumap::libvirt
