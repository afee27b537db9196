#include "guests.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace vcpumap::bpf::testing {
namespace {

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return std::nullopt;
  return text.str();
}

// The value of "name : value" in /proc/TID/sched.
std::uint64_t sched_value(const std::string& sched, const std::string& name) {
  std::istringstream lines(sched);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name, 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos || line.find_first_not_of(' ', name.size()) != colon) continue;
    return std::stoull(line.substr(colon + 1));
  }
  return ~std::uint64_t{0};
}

}  // namespace

int vcpu_threads(int pid) {
  int vcpus = 0;
  for (const int tid : proc_tids(pid)) {
    const auto thread = read_proc_thread(pid, tid);
    if (thread && thread->comm.rfind("CPU ", 0) == 0) ++vcpus;
  }
  return vcpus;
}

FakeGuests::FakeGuests(const std::string& fake_guest, int count, int vcpus) {
  int out[2];
  if (::pipe(out) != 0) return;
  parent_ = ::fork();
  if (parent_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    const std::string threads = std::to_string(vcpus), guests = std::to_string(count);
    // The parent runs under its own name; its children exec as qemu-system-x86_64.
    ::execl(fake_guest.c_str(), "bpf-test-guests", "-name", "guest=bpftest,debug-threads=on",
            "--threads", threads.c_str(), "--guests", guests.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  // It prints one pid a line once every guest has named its threads.
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (static_cast<int>(std::count(text.begin(), text.end(), '\n')) < count &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd ready{out[0], POLLIN, 0};
    if (::poll(&ready, 1, 1000) <= 0) continue;
    char buffer[4096];
    const ssize_t got = ::read(out[0], buffer, sizeof(buffer));
    if (got <= 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(out[0]);
  std::istringstream lines(text);
  for (int pid; lines >> pid;) pids_.push_back(pid);
  // The parent prints a pid when it forks the guest: wait until the guest has exec'ed and named
  // all its vCPU threads.
  for (const int pid : pids_) {
    while (vcpu_threads(pid) != vcpus) {
      if (std::chrono::steady_clock::now() > deadline) {
        pids_.clear();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (static_cast<int>(pids_.size()) != count) pids_.clear();
}

FakeGuests::~FakeGuests() {
  if (parent_ <= 0) return;
  // Stopped guests would hold their parent in waitpid: let them run, then end them all.
  for (const int pid : pids_) ::kill(pid, SIGCONT);
  ::kill(parent_, SIGTERM);
  ::waitpid(parent_, nullptr, 0);
}

bool FakeGuests::freeze() {
  for (const int pid : pids_) ::kill(pid, SIGSTOP);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (const int pid : pids_) {
    for (const int tid : proc_tids(pid)) {
      for (;;) {
        const auto thread = read_proc_thread(pid, tid);
        if (!thread || thread->state == 'T') break;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
      }
    }
  }
  return true;
}

std::vector<int> proc_tids(int pid) {
  std::vector<int> tids;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
    tids.push_back(std::stoi(entry.path().filename().string()));
  }
  std::sort(tids.begin(), tids.end());
  return tids;
}

std::optional<ProcThread> read_proc_thread(int pid, int tid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/";
  const auto stat = slurp(dir + "stat");
  const auto schedstat = slurp(dir + "schedstat");
  const auto sched = slurp(dir + "sched");
  if (!stat || !schedstat || !sched) return std::nullopt;
  ProcThread thread;
  thread.tid = tid;
  // The name in field 2 ends at the LAST ')'; fields 3... follow, one space apart.
  const auto open = stat->find('('), close = stat->rfind(')');
  thread.comm = stat->substr(open + 1, close - open - 1);
  std::istringstream fields(stat->substr(close + 2));
  std::vector<std::string> field(3);  // field[n] is proc(5)'s field n
  for (std::string value; fields >> value;) field.push_back(value);
  thread.state = field.at(3).at(0);
  thread.start_time_ticks = std::stoull(field.at(22));
  thread.cpu = std::stoi(field.at(39));
  std::istringstream numbers(*schedstat);
  numbers >> thread.cpu_time_ns >> thread.run_delay_ns >> thread.timeslices;
  thread.migrations = sched_value(*sched, "se.nr_migrations");
  thread.nvcsw = sched_value(*sched, "nr_voluntary_switches");
  thread.nivcsw = sched_value(*sched, "nr_involuntary_switches");
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (::sched_getaffinity(tid, sizeof(mask), &mask) != 0) return std::nullopt;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &mask)) thread.affinity.add(cpu);
  }
  return thread;
}

int proc_thread_count(int pid) {
  const auto status = slurp("/proc/" + std::to_string(pid) + "/status");
  if (!status) return -1;
  const auto at = status->find("\nThreads:");
  return at == std::string::npos ? -1 : std::stoi(status->substr(at + 9));
}

}  // namespace vcpumap::bpf::testing
