// bpf_read_cost: what reading every thread's facts costs, per thread, with each BPF walker and
// with procfs (stat + schedstat + sched, as the procfs source reads them), over fake guests.
//
//   bpf_read_cost FAKE_GUEST [--guests N] [--vcpus V] [--rounds R] [--interval-ms MS]
//
// Starts N fake guests of V vCPU threads (idle, as most of a fleet's are), then for each method
// runs R rounds MS apart (cold caches, as a sampler at 1 Hz sees them) and prints the process'
// CPU time per thread (CLOCK_PROCESS_CPUTIME_ID: user + kernel, syscalls included) and, for BPF,
// the kernel's own count of the programs' run time (BPF_ENABLE_STATS; for iter/task it is the
// per-task program only, not the walk around it), the CPU time open() took and what the reader
// added to this process' RSS. Needs root.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../bpf/guests.h"
#include "sources/bpf/task_reader.h"

namespace {

using vcpumap::bpf::TaskReader;
using vcpumap::bpf::Walker;

double cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// One procfs round: list each process' threads, open and read the three files of each.
std::size_t read_procfs(const std::vector<int>& pids, std::vector<char>& buffer) {
  std::size_t threads = 0;
  for (const int pid : pids) {
    const std::string task = "/proc/" + std::to_string(pid) + "/task";
    DIR* dir = ::opendir(task.c_str());
    if (dir == nullptr) continue;
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      for (const char* file : {"stat", "schedstat", "sched"}) {
        const std::string path = task + "/" + entry->d_name + "/" + file;
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        if (::pread(fd, buffer.data(), buffer.size(), 0) < 0) std::perror(path.c_str());
        ::close(fd);
      }
      ++threads;
    }
    ::closedir(dir);
  }
  return threads;
}

struct Options {
  std::string fake_guest;
  int guests = 200;
  int vcpus = 8;
  int rounds = 5;
  int interval_ms = 500;
};

Options parse(int argc, char** argv) {
  Options options;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bpf_read_cost FAKE_GUEST [--guests N] [--vcpus V] [--rounds R] "
                 "[--interval-ms MS]\n");
    std::exit(2);
  }
  options.fake_guest = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (name == "--guests")
      options.guests = value;
    else if (name == "--vcpus")
      options.vcpus = value;
    else if (name == "--rounds")
      options.rounds = value;
    else if (name == "--interval-ms")
      options.interval_ms = value;
    else {
      std::fprintf(stderr, "bpf_read_cost: unknown option %s\n", name.c_str());
      std::exit(2);
    }
  }
  return options;
}

void pause_between(const Options& options) {
  std::this_thread::sleep_for(std::chrono::milliseconds(options.interval_ms));
}

// This process' resident set now, in KiB (statm's second field, in pages).
long rss_kib() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (statm == nullptr) return -1;
  if (std::fscanf(statm, "%ld %ld", &size, &resident) != 2) resident = -1;
  std::fclose(statm);
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

void measure_bpf(const Options& options, Walker walker, TaskReader::SeqFileScope scope,
                 const char* name, const std::vector<int>& pids) {
  const long rss_before = rss_kib();
  const double before_open = cpu_seconds();
  auto reader = TaskReader::open(walker);
  if (!reader) {
    std::printf("%-22s unavailable: %s\n", name, reader.error().message.c_str());
    return;
  }
  (*reader)->set_seq_file_scope(scope);
  const double open_ms = (cpu_seconds() - before_open) * 1e3;
  std::vector<vcpumap::bpf::TaskRecord> threads;
  if (!(*reader)->read_threads(pids, threads)) return;  // warm: first-touch of the pages
  const auto stats_before = (*reader)->thread_program_stats();
  double cpu = 0;
  std::size_t total = 0;
  for (int round = 0; round < options.rounds; ++round) {
    pause_between(options);
    const double start = cpu_seconds();
    const auto status = (*reader)->read_threads(pids, threads);
    cpu += cpu_seconds() - start;
    if (!status) {
      std::printf("%s\n", status.error().message.c_str());
      return;
    }
    total += threads.size();
  }
  const auto stats_after = (*reader)->thread_program_stats();
  double kernel_us = -1;
  if (stats_before && stats_after && stats_after->run_count > stats_before->run_count) {
    kernel_us = static_cast<double>(stats_after->run_time_ns - stats_before->run_time_ns) * 1e-3;
  }
  std::printf(
      "%-22s %6zu threads  CPU %6.3f us/thread (%7.2f ms/round)  BPF programs %6.3f "
      "us/thread  open %5.1f ms CPU  RSS +%ld KiB\n",
      name, threads.size(), cpu * 1e6 / static_cast<double>(total), cpu * 1e3 / options.rounds,
      kernel_us / static_cast<double>(total), open_ms, rss_kib() - rss_before);
}

void measure_procfs(const Options& options, const std::vector<int>& pids) {
  std::vector<char> buffer(4096);
  double cpu = 0;
  std::size_t total = 0, per_round = 0;
  for (int round = 0; round < options.rounds; ++round) {
    pause_between(options);
    const double start = cpu_seconds();
    per_round = read_procfs(pids, buffer);
    cpu += cpu_seconds() - start;
    total += per_round;
  }
  std::printf("%-22s %6zu threads  CPU %6.3f us/thread (%7.2f ms/round)\n", "procfs", per_round,
              cpu * 1e6 / static_cast<double>(total), cpu * 1e3 / options.rounds);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  // The kernel counts BPF programs' run time only while this descriptor is held.
  const auto stats = vcpumap::bpf::enable_program_stats();
  if (!stats) std::fprintf(stderr, "bpf_read_cost: %s\n", stats.error().message.c_str());
  vcpumap::bpf::testing::FakeGuests guests(options.fake_guest, options.guests, options.vcpus);
  if (guests.pids().empty()) {
    std::fprintf(stderr, "bpf_read_cost: could not start %d fake guests with %s\n", options.guests,
                 options.fake_guest.c_str());
    return 1;
  }
  std::printf("%d guests x %d vCPUs, %d rounds %d ms apart\n", options.guests, options.vcpus,
              options.rounds, options.interval_ms);
  using Scope = TaskReader::SeqFileScope;
  measure_bpf(options, Walker::open_coded_iterator, Scope::automatic, "open-coded", guests.pids());
  measure_bpf(options, Walker::seq_file_iterator, Scope::per_process, "iter/task per process",
              guests.pids());
  measure_bpf(options, Walker::seq_file_iterator, Scope::whole_system, "iter/task whole system",
              guests.pids());
  measure_procfs(options, guests.pids());
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  std::printf("peak RSS of this tool: %ld KiB\n", usage.ru_maxrss);
  return 0;
}
