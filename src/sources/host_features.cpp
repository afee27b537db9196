#include "sources/host_features.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "sources/bpf/delay_tracer.h"
#include "sources/bpf/event_ring.h"
#include "sources/bpf/task_reader.h"
#include "sources/perf/sched_tracer.h"
#include "sources/procfs/procfs.h"
#include "util/fd.h"
#include "util/text.h"

namespace vcpumap {
namespace {

bool path_exists(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}

std::optional<std::string> read_trimmed(const std::filesystem::path& path) {
  auto text = read_file_at(AT_FDCWD, path.c_str());
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  return text;
}

// Effective capabilities of this process, by number (capget: no libcap needed for one word).
bool has_capability(int capability) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  return (data[capability / 32].effective & (1U << (capability % 32))) != 0;
}

// Some thread's folder under ROOT/proc: this process's own on a live host, any in a fixture tree.
std::optional<std::filesystem::path> some_thread_folder(const std::filesystem::path& root) {
  const procfs::Procfs procfs(root);
  if (procfs::is_own_root(root)) {
    return root / "proc" / fmt::to_string(::getpid()) / "task" / fmt::to_string(::gettid());
  }
  for (const int pid : procfs.list_pids()) {
    const auto task = root / "proc" / fmt::to_string(pid) / "task";
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(task, error)) {
      return entry.path();
    }
  }
  return std::nullopt;
}

}  // namespace

HostFeatures probe_host(const std::filesystem::path& root) {
  HostFeatures host;
  const bool own = procfs::is_own_root(root);
  const auto add = [&](std::string name, bool ok, std::string detail) {
    host.checks.push_back({std::move(name), ok, std::move(detail)});
  };

  if (auto release = read_trimmed(root / "proc/sys/kernel/osrelease")) host.kernel = *release;
  add("kernel", !host.kernel.empty(), host.kernel.empty() ? "unknown" : host.kernel);
  const bool btf = path_exists(root / "sys/kernel/btf/vmlinux");
  add("btf", btf,
      btf ? "/sys/kernel/btf/vmlinux present"
          : "/sys/kernel/btf/vmlinux missing: BPF needs a kernel built with CONFIG_DEBUG_INFO_BTF");
  if (own) {
    const bool root_user = ::geteuid() == 0;
    const bool caps = has_capability(CAP_BPF) && has_capability(CAP_PERFMON);
    add("privileges", root_user || caps,
        root_user ? "root"
        : caps    ? "CAP_BPF and CAP_PERFMON"
                  : "neither root nor CAP_BPF+CAP_PERFMON: BPF and perf tracepoints need them");
  }
  const auto thread = some_thread_folder(root);
  const bool schedstat = thread && path_exists(*thread / "schedstat");
  add("schedstat", schedstat,
      schedstat ? "/proc/PID/task/TID/schedstat present (CONFIG_SCHED_INFO): run delay is known"
                : "no schedstat file (CONFIG_SCHED_INFO off): run delay is unavailable");
  const bool sched = thread && path_exists(*thread / "sched");
  add("sched_debug", sched,
      sched ? "/proc/PID/task/TID/sched present (CONFIG_SCHED_DEBUG): migrations are counted"
            : "no sched file (CONFIG_SCHED_DEBUG off): migrations are only observed");
  const auto sched_text =
      thread ? read_file_at(AT_FDCWD, (*thread / "sched").c_str()) : std::nullopt;
  const bool schedstats = sched_text && sched_text->find("wait_sum") != std::string::npos;
  add("schedstats", schedstats,
      schedstats ? "CONFIG_SCHEDSTATS on (sched shows wait_sum)"
                 : "CONFIG_SCHEDSTATS off or disabled: libvirt's vcpu wait (wait_sum) is not "
                   "there; run delay comes from schedstat");
  const auto paranoid = read_trimmed(root / "proc/sys/kernel/perf_event_paranoid");
  add("perf_event_paranoid", paranoid.has_value(), paranoid.value_or("unknown"));
  auto tracepoints = perf::find_sched_tracepoints(root);
  add("tracefs", tracepoints.ok(),
      tracepoints ? fmt::format("sched tracepoints under {}", tracepoints->tracefs.string())
                  : tracepoints.error().message);

  // The thread-facts engines, in the order auto tries them.
  for (const auto walker : {bpf::Walker::open_coded_iterator, bpf::Walker::seq_file_iterator}) {
    SourceProbe probe{fmt::format("bpf ({})", bpf::walker_name(walker)), false, {}};
    if (!own) {
      probe.why = "--root names another tree: BPF reads this machine's kernel";
    } else {
      const auto result = bpf::probe(walker);
      probe.available = result.available;
      probe.why = result.available ? "loads and runs here" : result.why;
    }
    host.thread_sources.push_back(std::move(probe));
  }
  host.thread_sources.push_back({"procfs", path_exists(root / "proc"),
                                 path_exists(root / "proc")
                                     ? fmt::format("{} is readable", (root / "proc").string())
                                     : fmt::format("{} is missing", (root / "proc").string())});
  // The sched-event engines, in the order record --exact tries them: loading is the only test.
  SourceProbe ring{"bpf", false, "--root names another tree: BPF reads this machine's kernel"};
  if (own) {
    auto loaded = bpf::EventRing::open();
    ring.available = loaded.ok();
    ring.why = loaded ? "tp_btf programs and a BPF ring buffer load here" : loaded.error().message;
  }
  host.event_sources.push_back(std::move(ring));
  SourceProbe delay{"bpf delay split", false, ring.why};
  if (own) {
    auto loaded = bpf::DelayTracer::open();
    delay.available = loaded.ok();
    delay.why = loaded ? "tp_btf programs that split run delay in the kernel load here"
                       : loaded.error().message;
  }
  host.delay_source = std::move(delay);
  host.event_sources.push_back({"perf", tracepoints.ok() && (!own || ::geteuid() == 0),
                                tracepoints ? "sched tracepoints through perf_event_open (root)"
                                            : tracepoints.error().message});
  return host;
}

}  // namespace vcpumap
