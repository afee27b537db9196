// `vcpumap serve`: an HTTP server for Prometheus (/metrics), the JSON snapshot
// (/api/v1/snapshot) and a health check (/healthz). Read-only, loopback unless told otherwise.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "serve/snapshot_cache.h"
#include "util/result.h"
#include "util/version.h"

namespace vcpumap::serve {

// The default port: the Prometheus exporter range 9100-9999 is fully allocated, so vcpumap takes
// one outside it and below the kernel's ephemeral range (see docs/metrics.md).
inline constexpr int kDefaultPort = 18278;

struct ServeOptions {
  std::string listen = "127.0.0.1:18278";  // ADDR:PORT; [v6addr]:PORT; port 0 picks a free one
  std::string web_config_file;             // exporter-toolkit's --web.config.file, or empty
  std::chrono::milliseconds cache_max_age{1000};
  std::size_t max_connections = 64;          // connections served at once; the rest wait
  std::chrono::seconds request_timeout{10};  // for reading a request and writing the reply
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

// Serves until SIGTERM or SIGINT, then stops cleanly. `take` reads the host for each snapshot.
// Prints the address it listens on to stderr once it accepts connections.
Status run_server(const ServeOptions& options, SnapshotCache::Take take);

}  // namespace vcpumap::serve
