// render_cost: the exporter's rendering alone, at fleet scale, without /proc. Builds a snapshot
// of P VMs x T vCPUs (each with a main thread and an I/O thread, schedstat and sched figures, a
// libvirt domain with nova metadata) and times render_metrics and the gzip of its text, the part
// of a scrape that stays when a BPF source replaces reading /proc.
//
//   render_cost [P] [T] [ROUNDS]     (default 1250 8 10)
//
// Prints the median CPU seconds (CLOCK_PROCESS_CPUTIME_ID) of each, the text's size and series,
// and the peak RSS (VmHWM).
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "serve/snapshot_cache.h"
#include "views/prometheus_view.h"

namespace {

double cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

vcpumap::VmThread thread(int tid, vcpumap::ThreadRole role, int cpu, std::uint64_t seed) {
  vcpumap::VmThread out;
  out.tid = tid;
  out.role = role;
  out.facts.last_cpu = cpu;
  out.facts.cpu_time_ns = 1'000'000'007 * seed;
  out.facts.run_delay_ns = 3'000'017 * seed;
  out.facts.migrations = seed % 977;
  out.facts.affinity = vcpumap::CpuSet::parse_list("0-63").value();
  return out;
}

vcpumap::Snapshot fleet_host(int vms, int vcpus) {
  vcpumap::Snapshot snapshot;
  snapshot.clock_ticks_per_second = 100;
  for (int cpu = 0; cpu < 64; ++cpu) {
    vcpumap::Cpu host_cpu;
    host_cpu.cpu = cpu;
    host_cpu.core = cpu / 2;
    host_cpu.package = cpu / 32;
    host_cpu.node = cpu / 32;
    snapshot.topology.cpus.push_back(host_cpu);
  }
  int tid = 1000;
  for (int v = 0; v < vms; ++v) {
    vcpumap::Vm vm;
    vm.pid = tid;
    vm.name = "instance-" + std::to_string(100000 + v);
    vm.uuid = "6f1c2a9e-0b7d-4c1e-9a55-" + std::to_string(100000000000LL + v);
    vm.threads.push_back(thread(tid++, vcpumap::ThreadRole::emulator_main, v % 64, v + 1));
    for (int c = 0; c < vcpus; ++c) {
      auto vcpu = thread(tid++, vcpumap::ThreadRole::vcpu, (v + c) % 64, v * 8 + c + 1);
      vcpu.vcpu = c;
      vm.threads.push_back(vcpu);
    }
    auto io = thread(tid++, vcpumap::ThreadRole::iothread, v % 64, v + 7);
    io.iothread = "iothread0";
    vm.threads.push_back(io);
    vcpumap::LibvirtDomain domain;
    domain.id = v + 1;
    domain.state = "running";
    domain.nova =
        vcpumap::NovaInstance{"web-" + std::to_string(v), "m1.large", "project-7", "", ""};
    vm.libvirt = domain;
    snapshot.vms.push_back(std::move(vm));
  }
  return snapshot;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int vms = argc > 1 ? std::atoi(argv[1]) : 1250;
  const int vcpus = argc > 2 ? std::atoi(argv[2]) : 8;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 10;
  const auto snapshot = fleet_host(vms, vcpus);
  std::vector<double> render, gzip;
  std::size_t bytes = 0, packed = 0, series = 0;
  // One renderer for every round, as the exporter keeps one between scrapes.
  vcpumap::views::MetricsRenderer renderer;
  for (int round = 0; round < rounds; ++round) {
    const double t0 = cpu_seconds();
    const std::string text = renderer.render(snapshot, {});
    const double t1 = cpu_seconds();
    const std::string zipped = vcpumap::serve::gzip(text);
    const double t2 = cpu_seconds();
    render.push_back(t1 - t0);
    gzip.push_back(t2 - t1);
    bytes = text.size();
    packed = zipped.size();
    series = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "%d VMs x %d vCPUs: render %.4f s, gzip %.4f s (CPU, median of %d); text %.1f MB, "
      "%zu lines, gzipped %.2f MB; peak RSS %ld MiB\n",
      vms, vcpus, median(render), median(gzip), rounds, static_cast<double>(bytes) / 1e6, series,
      static_cast<double>(packed) / 1e6, usage.ru_maxrss / 1024);
  return 0;
}
