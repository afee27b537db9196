#include "serve/server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "serve/acceptor.h"
#include "serve/tls.h"
#include "serve/web_config.h"
#include "sources/procfs/thread_files.h"
#include "util/fd.h"
#include "util/text.h"
#include "views/prometheus_view.h"

namespace vcpumap::serve {
namespace {

// The kernel queues this many connections the event loops have not accepted yet, so 100
// scrapers connecting at once are not dropped and retried a second later.
constexpr int kListenBacklog = 512;

// libmicrohttpd's event loops (one epoll each). Requests wait in them only for a snapshot, which
// all of them share (single flight), or for bcrypt on a password not seen before: a few loops
// keep one such wait from holding up the connections the others serve.
constexpr unsigned kEventLoops = 4;

const char* const kPlainText = "text/plain; charset=utf-8";

// Counts replies not yet sent, so a stop can let them finish. A reply's body is freed by
// libmicrohttpd once sent or abandoned, which is when it leaves the count.
class InFlight {
 public:
  void enter() {
    std::lock_guard lock(mutex_);
    ++count_;
  }
  void leave() {
    std::lock_guard lock(mutex_);
    if (--count_ == 0) idle_.notify_all();
  }
  // Waits until no reply is in flight or `limit` passed; true when none is.
  bool wait_idle(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, limit, [this] { return count_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  std::size_t count_ = 0;
};

// What every request is answered from.
struct Service {
  Service(SnapshotCache& cache_in, BasicAuth& auth_in, ClientAuth mode)
      : cache(cache_in), auth(auth_in), client_auth(mode) {}

  SnapshotCache& cache;
  BasicAuth& auth;
  ClientAuth client_auth = ClientAuth::none;
  InFlight in_flight;
  std::atomic<std::size_t> open{0};  // connections handed to libmicrohttpd and not closed yet
};

// libmicrohttpd's word that a connection closed. The accept loop counts a connection in as it
// hands it over: libmicrohttpd starts it later, in the event loop that gets it, so counting
// its "started" would let a burst of connections in past the cap before the first is counted.
void count_connection(void* cls, MHD_Connection* /*connection*/, void** /*socket_context*/,
                      MHD_ConnectionNotificationCode change) {
  if (change == MHD_CONNECTION_NOTIFY_CLOSED) --static_cast<Service*>(cls)->open;
}

// A reply's body: either text of a shared snapshot (kept alive by `hold`) or text of its own.
struct Body {
  Service* service = nullptr;
  std::shared_ptr<const CachedSnapshot> hold;
  std::string owned;
};

void free_body(void* cls) {
  auto* body = static_cast<Body*>(cls);
  Service* service = body->service;
  delete body;
  service->in_flight.leave();
}

MHD_Result reply(MHD_Connection* connection, Service& service, unsigned status,
                 std::string_view content_type, std::string owned,
                 std::shared_ptr<const CachedSnapshot> hold = nullptr,
                 std::string_view shared_text = {}, bool gzipped = false,
                 std::vector<std::pair<const char*, const char*>> headers = {}) {
  auto body = std::make_unique<Body>();
  body->service = &service;
  body->hold = std::move(hold);
  body->owned = std::move(owned);
  const std::string_view text = body->hold ? shared_text : std::string_view(body->owned);
  service.in_flight.enter();
  Body* raw = body.release();
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      // libmicrohttpd only reads the buffer; its signature predates const.
      text.size(), const_cast<char*>(text.data()), free_body, raw);
  if (response == nullptr) {
    free_body(raw);
    return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          std::string(content_type).c_str());
  if (gzipped) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
  for (const auto& [name, value] : headers) MHD_add_response_header(response, name, value);
  const MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

const char* header(MHD_Connection* connection, const char* name) {
  return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

MHD_Result answer_metrics(MHD_Connection* connection, Service& service) {
  auto cached = service.cache.get();
  const char* encoding = header(connection, MHD_HTTP_HEADER_ACCEPT_ENCODING);
  const bool gzip =
      encoding != nullptr && accepts_gzip(encoding) && !cached->metrics_gzip().empty();
  // A failed snapshot still answers 200 with the exporter's own metrics
  // (vcpumap_scrape_success 0), as node_exporter does for a failed collector.
  const std::string& text = gzip ? cached->metrics_gzip() : cached->metrics_text();
  return reply(connection, service, MHD_HTTP_OK, views::kPrometheusContentType, {}, cached, text,
               gzip, {{MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING}});
}

MHD_Result answer_snapshot(MHD_Connection* connection, Service& service) {
  auto cached = service.cache.get();
  if (!cached->snapshot()) {
    return reply(connection, service, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                 nlohmann::json{{"error", cached->snapshot().error().message}}.dump() + "\n");
  }
  const std::string& text = cached->json_text();
  return reply(connection, service, MHD_HTTP_OK, "application/json", {}, cached, text);
}

// libmicrohttpd's access handler: called once the request line and headers are read, before any
// body. Every answer is queued on that first call, so a body is never read: libmicrohttpd then
// closes the connection after the reply instead of reading what was announced.
MHD_Result answer(void* cls, MHD_Connection* connection, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload_data*/,
                  std::size_t* /*upload_data_size*/, void** /*request_state*/) {
  auto& service = *static_cast<Service*>(cls);
  const std::string_view verb = method;
  if (verb != MHD_HTTP_METHOD_GET && verb != MHD_HTTP_METHOD_HEAD) {
    return reply(connection, service, MHD_HTTP_METHOD_NOT_ALLOWED, kPlainText,
                 "vcpumap serve is read-only: only GET and HEAD are allowed\n", nullptr, {}, false,
                 {{MHD_HTTP_HEADER_ALLOW, "GET, HEAD"}});
  }
  if (service.client_auth != ClientAuth::none) {
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const auto session =
        info != nullptr ? static_cast<gnutls_session_t>(info->tls_session) : gnutls_session_t{};
    if (auto why = check_client_certificate(session, service.client_auth); !why.empty()) {
      return reply(connection, service, MHD_HTTP_FORBIDDEN, kPlainText, why + "\n");
    }
  }
  if (service.auth.enabled()) {
    const char* authorization = header(connection, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!service.auth.check(authorization != nullptr ? authorization : "")) {
      return reply(connection, service, MHD_HTTP_UNAUTHORIZED, kPlainText, "Unauthorized\n",
                   nullptr, {}, false,
                   {{MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"vcpumap\""}});
    }
  }
  const std::string_view path = url;
  if (path == "/metrics") return answer_metrics(connection, service);
  if (path == "/api/v1/snapshot") return answer_snapshot(connection, service);
  if (path == "/healthz") return reply(connection, service, MHD_HTTP_OK, kPlainText, "ok\n");
  if (path == "/") {
    return reply(connection, service, MHD_HTTP_OK, kPlainText,
                 "vcpumap exporter\n  /metrics          Prometheus metrics\n"
                 "  /api/v1/snapshot  the `vcpumap list --json` document\n"
                 "  /healthz          ok\n");
  }
  return reply(connection, service, MHD_HTTP_NOT_FOUND, kPlainText,
               "not found: see / for the paths\n");
}

// libmicrohttpd's messages. Before the daemon runs the last one says why it did not start;
// after, they are about single clients (a refused connection, a bad request) and a flood of
// them must not flood the exporter's stderr, so they are dropped.
struct StartLog {
  std::mutex mutex;
  std::string last;
  bool started = false;
};

void log_message(void* cls, const char* format, va_list arguments) {
  auto& log = *static_cast<StartLog*>(cls);
  std::lock_guard lock(log.mutex);
  if (log.started) return;
  char text[512];
  std::vsnprintf(text, sizeof text, format, arguments);
  log.last = text;
  while (!log.last.empty() && (log.last.back() == '\n' || log.last.back() == ' ')) {
    log.last.pop_back();
  }
}

// A listening socket with SO_REUSEADDR only: SO_REUSEPORT would let a second exporter bind the
// same port and silently take half the scrapes. Sets `port` to the port it got.
Result<Fd> open_listener(const std::string& text, const ListenAddress& address, int& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(address.port);
  if (const int rc = getaddrinfo(address.host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return make_error(ExitCode::failure, "can't listen on {}: {}", text, gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
  Fd fd(socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    return make_error(ExitCode::failure, "can't listen on {}: {}", text, std::strerror(errno));
  }
  const int yes = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0 ||
      listen(fd.get(), kListenBacklog) != 0) {
    return make_error(ExitCode::failure, "can't listen on {}: {}", text, std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                           : reinterpret_cast<sockaddr_in&>(bound).sin_port);
  return fd;
}

// Blocks SIGTERM and SIGINT in this thread (and so in every thread started after) for the life
// of the object, and reads them from a signalfd: the stop runs in a normal thread, never in a
// signal handler.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals_, &previous_);
    fd_ = Fd(signalfd(-1, &signals_, SFD_CLOEXEC));
  }
  ~StopSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  bool valid() const { return fd_.valid(); }
  // Waits for a stop signal and gives its number.
  int wait() {
    pollfd wanted = {fd_.get(), POLLIN, 0};
    for (;;) {
      if (poll(&wanted, 1, -1) < 0 && errno != EINTR) return 0;
      signalfd_siginfo info{};
      if (read(fd_.get(), &info, sizeof info) == sizeof info)
        return static_cast<int>(info.ssi_signo);
    }
  }

 private:
  sigset_t signals_{}, previous_{};
  Fd fd_;
};

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress address;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) {
      return make_error(ExitCode::bad_input, "--listen {}: expected [IPV6]:PORT", text);
    }
    address.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return make_error(ExitCode::bad_input,
                        "--listen {}: expected ADDR:PORT, e.g. 127.0.0.1:{} or [::1]:{}", text,
                        kDefaultPort, kDefaultPort);
    }
    address.host = colon == 0 ? "0.0.0.0" : std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  const auto port = parse_u64(port_text);
  if (!port || *port > 65535) {
    return make_error(ExitCode::bad_input, "--listen {}: the port must be 0-65535", text);
  }
  address.port = static_cast<int>(*port);
  return address;
}

bool accepts_gzip(std::string_view accept_encoding) {
  for (std::string_view rest = accept_encoding; !rest.empty();) {
    const auto comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto semicolon = item.find(';');
    const std::string_view coding = trim(item.substr(0, semicolon));
    if (coding != "gzip" && coding != "*") continue;
    if (semicolon == std::string_view::npos) return true;
    std::string_view parameter = trim(item.substr(semicolon + 1));
    if (!parameter.starts_with("q=")) return true;
    parameter.remove_prefix(2);
    // q=0, q=0.0, q=0.000 refuse it; any other weight takes it.
    return parameter.find_first_not_of("0.") != std::string_view::npos;
  }
  return false;
}

Result<std::size_t> resolve_max_connections(std::size_t asked, std::uint64_t file_limit) {
  const std::size_t room = file_limit > kSpareFiles ? file_limit - kSpareFiles : 0;
  const std::size_t cap = asked != 0 ? asked : std::min(kDefaultMaxConnections, room / 2);
  if (cap == 0 || cap > room) {
    return make_error(ExitCode::bad_input,
                      "--max-connections {}: the open-file limit ({}) leaves room for at most {} "
                      "connections; raise `ulimit -n` or ask for fewer",
                      asked, file_limit, room);
  }
  return cap;
}

Status run_server(const ServeOptions& options, SnapshotCache::Take take) {
  auto address = parse_listen_address(options.listen);
  if (!address) return address.error();
  WebConfig web_config;
  if (!options.web_config_file.empty()) {
    auto loaded = load_web_config(options.web_config_file);
    if (!loaded) return loaded.error();
    web_config = std::move(*loaded);
  }
  TlsMaterial tls;
  if (web_config.tls) {
    auto material = load_tls_material(*web_config.tls);
    if (!material) return material.error();
    tls = std::move(*material);
  }

  // Every connection is a descriptor: the cap must fit under the open-file limit, beside the
  // sampler's kept files (cmd_serve.cpp leaves the cap and kSpareFiles out of their budget).
  auto max_connections =
      resolve_max_connections(options.max_connections, procfs::raise_open_file_limit());
  if (!max_connections) return max_connections.error();

  int port = address->port;
  auto listener = open_listener(options.listen, *address, port);
  if (!listener) return listener.error();

  StopSignals stop;
  signal(SIGPIPE, SIG_IGN);  // a scraper that hangs up mid-reply must not kill the exporter
  if (!stop.valid()) {
    return Error{fmt::format("can't set up signal handling: {}", std::strerror(errno))};
  }

  SnapshotCache cache(std::move(take), options.cache_max_age, options.version, options.collectors,
                      options.extra_metrics);
  BasicAuth auth(web_config.basic_auth_users);
  Service service(cache, auth, web_config.tls ? web_config.tls->client_auth : ClientAuth::none);
  StartLog log;

  std::vector<MHD_OptionItem> settings = {
      {MHD_OPTION_THREAD_POOL_SIZE, kEventLoops, nullptr},
      // The accept loop keeps the cap; libmicrohttpd's own limit, split between its loops, is
      // only a backstop above it.
      {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(2 * *max_connections + kEventLoops),
       nullptr},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&count_connection), &service},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<intptr_t>(options.max_connections_per_ip),
       nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(options.request_timeout.count()),
       nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(options.connection_memory),
       nullptr},
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&log_message), &log},
      {MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, nullptr},
  };
  // No listening socket of its own: the Acceptor below hands connections over (MHD_USE_ITC wakes
  // the loop that gets one).
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                   MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
  if (web_config.tls) {
    flags |= MHD_USE_TLS;
    settings.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, tls.cert_pem.data()});
    settings.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, tls.key_pem.data()});
    settings.push_back({MHD_OPTION_HTTPS_PRIORITIES, 0, tls.priorities.data()});
    if (!tls.client_ca_pem.empty()) {
      settings.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, tls.client_ca_pem.data()});
    }
  }
  settings.push_back({MHD_OPTION_END, 0, nullptr});

  MHD_Daemon* daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &answer, &service,
                                        MHD_OPTION_ARRAY, settings.data(), MHD_OPTION_END);
  if (daemon == nullptr) {
    std::lock_guard lock(log.mutex);
    return make_error(ExitCode::failure, "can't start the HTTP server on {}: {}", options.listen,
                      log.last.empty() ? "libmicrohttpd gave no reason" : log.last);
  }
  {
    std::lock_guard lock(log.mutex);
    log.started = true;
  }

  const bool ipv6 = address->host.find(':') != std::string::npos;
  fmt::print(stderr, "vcpumap serve: listening on {}://{}{}{}:{}/metrics{}{}\n",
             web_config.tls ? "https" : "http", ipv6 ? "[" : "", address->host, ipv6 ? "]" : "",
             port, auth.enabled() ? " (basic auth)" : "",
             service.client_auth != ClientAuth::none ? " (client certificates)" : "");
  std::fflush(stderr);

  int stopped_by = 0;
  {
    // MHD_add_connection closes the socket itself when it can't take it (per-address cap).
    const Acceptor acceptor(std::move(*listener), *max_connections, service.open,
                            [daemon, &service](int socket, const sockaddr* peer, socklen_t length) {
                              ++service.open;
                              if (MHD_add_connection(daemon, socket, peer, length) != MHD_YES) {
                                --service.open;
                              }
                            });
    stopped_by = stop.wait();
  }  // the acceptor stops here: no new connections from now on
  // Let the replies under way finish (bounded: a client that reads nothing must not hold the
  // stop up), then close every connection.
  service.in_flight.wait_idle(std::chrono::seconds(3));
  MHD_stop_daemon(daemon);

  const char* name = stopped_by != 0 ? sigabbrev_np(stopped_by) : nullptr;
  fmt::print(stderr, "vcpumap serve: SIG{}: stopped after {} snapshots\n", name ? name : "?",
             cache.snapshots_taken());
  return Ok{};
}

}  // namespace vcpumap::serve
