// `vcpumap serve`: an HTTP server for Prometheus (/metrics), the JSON snapshot
// (/api/v1/snapshot) and a health check (/healthz). Read-only, loopback unless told otherwise.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "serve/snapshot_cache.h"
#include "util/result.h"
#include "util/version.h"
#include "views/prometheus_view.h"

namespace vcpumap::serve {

// The default port: the Prometheus exporter range 9100-9999 is fully allocated, so vcpumap takes
// one outside it and below the kernel's ephemeral range (see docs/metrics.md).
inline constexpr int kDefaultPort = 18278;

// The most connections `max_connections = 0` (automatic) picks.
inline constexpr std::size_t kDefaultMaxConnections = 4096;

struct ServeOptions {
  std::string listen = "127.0.0.1:18278";  // ADDR:PORT; [v6addr]:PORT; port 0 picks a free one
  std::string web_config_file;             // exporter-toolkit's --web.config.file, or empty
  std::chrono::milliseconds cache_max_age{1000};
  // Connections open at once; past it a new one is closed at once. 0: kDefaultMaxConnections,
  // or half the open-file limit when that is lower.
  std::size_t max_connections = 0;
  std::size_t max_connections_per_ip = 256;  // 0: no cap per client address
  std::chrono::seconds request_timeout{10};  // a connection silent this long is closed
  // Per-connection memory (libmicrohttpd's pool): the request line and headers must fit in it.
  std::size_t connection_memory = 16 * 1024;
  views::Collectors collectors;  // the series families /metrics serves
  std::string version = kVersion;
  // More /metrics text from each snapshot (the delay split), or empty.
  SnapshotCache::ExtraMetrics extra_metrics;
};

struct ListenAddress {
  std::string host;
  int port = 0;
};

// Splits "ADDR:PORT", "[ADDR]:PORT" or ":PORT" (all interfaces); an error names the input.
Result<ListenAddress> parse_listen_address(std::string_view text);

// True when an Accept-Encoding header's value takes gzip (and does not give it q=0).
bool accepts_gzip(std::string_view accept_encoding);

// Descriptors the exporter keeps for everything but connections and the sampler's kept files.
inline constexpr std::size_t kSpareFiles = 512;

// The connection cap for `asked` (0: automatic) under an open-file limit; an error when the
// limit leaves no room for it.
Result<std::size_t> resolve_max_connections(std::size_t asked, std::uint64_t file_limit);

// Serves until SIGTERM or SIGINT, then stops cleanly. `take` reads the host for each snapshot.
// Prints the address it listens on to stderr once it accepts connections.
Status run_server(const ServeOptions& options, SnapshotCache::Take take);

}  // namespace vcpumap::serve
