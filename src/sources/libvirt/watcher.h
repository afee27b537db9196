// libvirt's view kept current by its own events, for the exporter and the live views: one
// connection with keepalive, domain events (lifecycle, tunable, metadata, devices) each of which
// has the domain it names described again, and reconnection with backoff (then a bulk listing).
// Reading the view never calls libvirt.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/model.h"

namespace vcpumap::libvirt {

// What the watcher knows now.
struct WatchedView {
  // The last listing, kept while libvirt is away (so known VMs keep their labels); null before
  // the first one.
  std::shared_ptr<const std::vector<LibvirtDomain>> domains;
  bool up = false;  // connected, and no call has waited longer than the timeout
  std::optional<std::chrono::system_clock::time_point> last_success;  // of the last listing
  std::uint64_t calls = 0;  // libvirt calls made since the watcher started
  std::string problem;      // why it is not up ("libvirt (URI) did not answer in 2 s")
  bool absent = false;      // libvirt is not on this host (no library, no daemon socket)
  // Bulk listings of every domain made (one per connection; an event describes one domain).
  std::uint64_t listings = 0;
};

class Watcher {
 public:
  // Starts watching `uri` (empty: LIBVIRT_DEFAULT_URI, else qemu:///system) on threads of its
  // own; returns at once. A call unanswered for `timeout` makes the view say libvirt is down.
  Watcher(std::string uri, std::chrono::milliseconds timeout);
  // Stops; a thread blocked in a call to a daemon that does not answer is left to end alone.
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // The current view; makes no libvirt call.
  WatchedView view() const;
  // Waits (at most the timeout) for the first listing, so a first scrape has libvirt's labels.
  void wait_first_listing() const;

  struct State;  // opaque: what the threads and libvirt's callbacks share

 private:
  std::shared_ptr<State> state_;
  std::thread watcher_;
  std::thread event_loop_;
};

}  // namespace vcpumap::libvirt
