#include "serve/server.h"

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "serve/connection_pool.h"
#include "serve/web_config.h"
#include "util/fd.h"
#include "util/text.h"
#include "views/prometheus_view.h"

namespace vcpumap::serve {
namespace {

// The kernel queues this many connections the accept loop has not taken yet. cpp-httplib 0.11
// listens with a backlog of 5: 50 scrapers connecting at once would see SYNs dropped and retried
// a second later.
constexpr int kListenBacklog = 128;

std::string openssl_error() {
  char text[256] = "unknown OpenSSL error";
  if (const unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, text, sizeof text);
  }
  return text;
}

// Configures the TLS context from the web config, as exporter-toolkit does (TLS 1.2 at least).
bool setup_tls(SSL_CTX& context, const TlsConfig& tls, std::string& error) {
  SSL_CTX_set_options(&context, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(&context, tls.min_version != 0 ? tls.min_version : TLS1_2_VERSION);
  if (tls.max_version != 0) SSL_CTX_set_max_proto_version(&context, tls.max_version);
  if (SSL_CTX_use_certificate_chain_file(&context, tls.cert_file.c_str()) != 1) {
    error =
        fmt::format("TLS: can't load cert_file {}: {}", tls.cert_file.string(), openssl_error());
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(&context, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(&context) != 1) {
    error = fmt::format("TLS: can't use key_file {}: {}", tls.key_file.string(), openssl_error());
    return false;
  }
  if (tls.client_auth != ClientAuth::none) {
    if (SSL_CTX_load_verify_locations(&context, tls.client_ca_file.c_str(), nullptr) != 1) {
      error = fmt::format("TLS: can't load client_ca_file {}: {}", tls.client_ca_file.string(),
                          openssl_error());
      return false;
    }
    SSL_CTX_set_client_CA_list(&context, SSL_load_client_CA_file(tls.client_ca_file.c_str()));
    const int mode = tls.client_auth == ClientAuth::require_and_verify
                         ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                         : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(&context, mode, nullptr);
  }
  return true;
}

// Stops the server on SIGTERM or SIGINT. The signals are blocked in every thread and read from
// a signalfd by this thread, so stop() runs in a normal thread, never in a signal handler.
class SignalWatcher {
 public:
  SignalWatcher(httplib::Server& server, int signal_fd, int done_fd)
      : thread_([this, &server, signal_fd, done_fd] { watch(server, signal_fd, done_fd); }) {}
  ~SignalWatcher() { thread_.join(); }

  // The signal that stopped the server, 0 when none did.
  int signal() const { return signal_.load(); }

 private:
  void watch(httplib::Server& server, int signal_fd, int done_fd) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {done_fd, POLLIN, 0}};
    while (poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    if (fds[1].revents != 0) return;  // the server ended on its own
    signalfd_siginfo info{};
    if (read(signal_fd, &info, sizeof info) == sizeof info)
      signal_ = static_cast<int>(info.ssi_signo);
    // A signal that came before listen() got going finds the server not yet running: keep
    // asking until it stops (the accept loop ends once its socket is closed).
    for (;;) {
      if (server.is_running()) server.stop();
      pollfd done = {done_fd, POLLIN, 0};
      if (poll(&done, 1, 10) > 0) return;
    }
  }

  std::atomic<int> signal_{0};
  std::thread thread_;
};

void route(httplib::Server& server, SnapshotCache& cache, BasicAuth& auth) {
  // Read-only: only GET and HEAD (httplib answers HEAD from the GET handlers). Checked before the
  // request body is read.
  server.set_pre_routing_handler(
      [&auth](const httplib::Request& request, httplib::Response& response) {
        if (request.method != "GET" && request.method != "HEAD") {
          response.status = 405;
          response.set_header("Allow", "GET, HEAD");
          response.set_content("vcpumap serve is read-only: only GET and HEAD are allowed\n",
                               "text/plain; charset=utf-8");
          return httplib::Server::HandlerResponse::Handled;
        }
        if (auth.enabled() && !auth.check(request.get_header_value("Authorization"))) {
          response.status = 401;
          response.set_header("WWW-Authenticate", "Basic realm=\"vcpumap\"");
          response.set_content("Unauthorized\n", "text/plain; charset=utf-8");
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });
  server.Get("/metrics", [&cache](const httplib::Request&, httplib::Response& response) {
    const auto cached = cache.get();
    // A failed snapshot still answers 200 with the exporter's own metrics
    // (vcpumap_scrape_success 0), as node_exporter does for a failed collector.
    response.set_content(cached->metrics_text(), std::string(views::kPrometheusContentType));
  });
  server.Get("/api/v1/snapshot", [&cache](const httplib::Request&, httplib::Response& response) {
    const auto cached = cache.get();
    if (!cached->snapshot()) {
      response.status = 503;
      response.set_content(
          nlohmann::json{{"error", cached->snapshot().error().message}}.dump() + "\n",
          "application/json");
      return;
    }
    response.set_content(cached->json_text(), "application/json");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain; charset=utf-8");
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(
        "vcpumap exporter\n  /metrics          Prometheus metrics\n"
        "  /api/v1/snapshot  the `vcpumap list --json` document\n  /healthz          ok\n",
        "text/plain; charset=utf-8");
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.body.empty()) {
      response.set_content(response.status == 404 ? std::string("not found: see / for the paths\n")
                                                  : fmt::format("error {}\n", response.status),
                           "text/plain; charset=utf-8");
    }
  });
}

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

Status run_server(const ServeOptions& options, SnapshotCache::Take take) {
  auto address = parse_listen_address(options.listen);
  if (!address) return address.error();
  WebConfig web_config;
  if (!options.web_config_file.empty()) {
    auto loaded = load_web_config(options.web_config_file);
    if (!loaded) return loaded.error();
    web_config = std::move(*loaded);
  }

  std::unique_ptr<httplib::Server> server;
  if (web_config.tls) {
    std::string tls_error;
    auto tls_server = std::make_unique<httplib::SSLServer>(
        [&](SSL_CTX& context) { return setup_tls(context, *web_config.tls, tls_error); });
    if (!tls_server->is_valid()) return Error{tls_error.empty() ? "TLS: setup failed" : tls_error};
    server = std::move(tls_server);
  } else {
    server = std::make_unique<httplib::Server>();
  }

  SnapshotCache cache(std::move(take), options.cache_max_age, options.version,
                      options.extra_metrics);
  BasicAuth auth(web_config.basic_auth_users);
  route(*server, cache, auth);
  const std::size_t max_connections = options.max_connections;
  server->new_task_queue = [max_connections] { return new ConnectionPool(max_connections); };
  server->set_read_timeout(options.request_timeout);
  server->set_write_timeout(options.request_timeout);
  server->set_keep_alive_timeout(5);
  server->set_payload_max_length(64 * 1024);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second exporter
  // bind the same port and silently take half the scrapes.
  int listen_fd = -1;
  server->set_socket_options([&listen_fd](int fd) {
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = fd;
  });

  // Block the stop signals before any thread starts, so every thread inherits the mask and only
  // the signalfd sees them.
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
  signal(SIGPIPE, SIG_IGN);  // a scraper that hangs up mid-reply must not kill the exporter
  const Fd signal_fd(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  const Fd done_fd(eventfd(0, EFD_CLOEXEC));
  const auto restore = [&] { pthread_sigmask(SIG_SETMASK, &previous, nullptr); };
  if (!signal_fd.valid() || !done_fd.valid()) {
    restore();
    return Error{fmt::format("can't set up signal handling: {}", std::strerror(errno))};
  }

  int port = address->port;
  bool bound = false;
  if (port == 0) {
    port = server->bind_to_any_port(address->host);
    bound = port > 0;
  } else {
    bound = server->bind_to_port(address->host, port);
  }
  if (!bound) {
    const int error = errno;
    restore();
    return make_error(ExitCode::failure, "can't listen on {}: {}", options.listen,
                      error != 0 ? std::strerror(error) : "not an address of this host");
  }
  // Linux takes a second listen() on a listening socket as a new backlog.
  if (listen_fd >= 0) ::listen(listen_fd, kListenBacklog);

  const bool ipv6 = address->host.find(':') != std::string::npos;
  fmt::print(stderr, "vcpumap serve: listening on {}://{}{}{}:{}/metrics{}{}\n",
             web_config.tls ? "https" : "http", ipv6 ? "[" : "", address->host, ipv6 ? "]" : "",
             port, auth.enabled() ? " (basic auth)" : "",
             web_config.tls && web_config.tls->client_auth != ClientAuth::none
                 ? " (client certificates)"
                 : "");
  std::fflush(stderr);

  bool listened = false;
  int stopped_by = 0;
  {
    SignalWatcher watcher(*server, signal_fd.get(), done_fd.get());
    listened = server->listen_after_bind();
    const std::uint64_t one = 1;
    // Wakes the watcher; an eventfd write of 1 can't fail short of a bad fd.
    [[maybe_unused]] const auto written = write(done_fd.get(), &one, sizeof one);
    stopped_by = watcher.signal();
  }
  restore();
  if (stopped_by != 0) {
    const char* name = sigabbrev_np(stopped_by);
    fmt::print(stderr, "vcpumap serve: SIG{}: stopped after {} snapshots\n", name ? name : "?",
               cache.snapshots_taken());
    return Ok{};
  }
  if (!listened) return Error{"the HTTP server stopped on an error"};
  return Ok{};
}

}  // namespace vcpumap::serve
