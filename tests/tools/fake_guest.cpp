// fake_guest: a process that looks like a QEMU guest to vcpumap, without QEMU or a VM.
//
// Run it with argv[0] = qemu-system-x86_64 (bash: `exec -a qemu-system-x86_64 fake_guest ...`,
// or a symlink of that name) and QEMU's `-name guest=NAME,debug-threads=on`:
//
//   fake_guest [-name guest=NAME,...] [--threads T] [--accel KVM] [--iothread] [--busy] [--bursty]
//              [--name-thread TEXT]... [--guests P] [other QEMU arguments, ignored]
//
//   --threads T         T vCPU threads named "CPU 0/KVM" ... "CPU T-1/KVM" (default 2)
//   --accel NAME        the accelerator in the vCPU thread names (default KVM)
//   --iothread          one more thread named "IO io1"
//   --busy              the threads spin instead of sleeping
//   --bursty            the threads spin for 0.2 ms, then sleep for 2 ms, again and again: a vCPU
//                       that wakes often and runs briefly
//   --name-thread TEXT  one more thread whose name is TEXT written raw to
//                       /proc/self/task/TID/comm (any bytes; the kernel keeps the first 15)
//   --guests P          fork P fake guests (each execs this program as qemu-system-x86_64 with
//                       -name guest=NAME-i,debug-threads=on), print their pids one a line and wait;
//                       SIGTERM to this parent stops them all, and they die with it. Run the parent
//                       under its own name, else it is listed as a guest without vCPUs.
//
// Prints its pid (or with --guests, its children's pids) once every thread is named, then waits
// for SIGTERM or SIGINT and exits 0.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <latch>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string name = "fake-guest";  // from -name guest=NAME,... or -name NAME
  int threads = 2;
  std::string accel = "KVM";
  bool iothread = false;
  bool busy = false;
  bool bursty = false;
  bool quiet = false;  // a child of --guests: its parent prints the pids
  int guests = 0;
  std::vector<std::string> hostile_names;
  std::vector<std::string> passthrough;  // arguments the children of --guests get too
};

[[noreturn]] void usage(const char* message) {
  std::fprintf(
      stderr,
      "fake_guest: %s\nusage: fake_guest [-name guest=NAME,debug-threads=on] "
      "[--threads T] [--accel NAME] [--iothread] [--busy] [--bursty] [--name-thread TEXT]... "
      "[--guests P]\n",
      message);
  std::exit(2);
}

int parse_count(std::string_view text, const char* option) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value < 0 || value > 4096) {
    usage((std::string("bad number for ") + option).c_str());
  }
  return value;
}

// The guest name in a QEMU -name value: "guest=NAME,..." or "NAME,..." (",," is a comma).
std::string guest_name(std::string_view value) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == ',' && i + 1 < value.size() && value[i + 1] == ',') {
      parts.back() += ',';
      ++i;
    } else if (value[i] == ',') {
      parts.emplace_back();
    } else {
      parts.back() += value[i];
    }
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].starts_with("guest=")) return parts[i].substr(6);
    if (i == 0 && parts[i].find('=') == std::string::npos) return parts[i];
  }
  return "fake-guest";
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--threads" || arg == "--accel" || arg == "--name-thread" || arg == "--guests") {
      if (!has_value) usage((std::string(arg) + " needs a value").c_str());
      const std::string_view value = argv[++i];
      if (arg == "--threads") options.threads = parse_count(value, "--threads");
      if (arg == "--accel") options.accel = value;
      if (arg == "--name-thread") options.hostile_names.emplace_back(value);
      if (arg == "--guests") options.guests = parse_count(value, "--guests");
      if (arg != "--guests") {
        options.passthrough.emplace_back(arg);
        options.passthrough.emplace_back(value);
      }
    } else if (arg == "--iothread" || arg == "--busy" || arg == "--bursty") {
      (arg == "--busy"     ? options.busy
       : arg == "--bursty" ? options.bursty
                           : options.iothread) = true;
      options.passthrough.emplace_back(arg);
    } else if (arg == "--quiet") {
      options.quiet = true;
    } else if ((arg == "-name" || arg == "--name") && has_value) {
      options.name = guest_name(argv[++i]);
    } else if (arg == "--help" || arg == "-h") {
      usage("help");
    } else {
      options.passthrough.emplace_back(arg);  // other QEMU arguments: kept, not used
    }
  }
  return options;
}

std::atomic<bool> g_spin{true};

// Writes `name` raw into this thread's comm (no trailing newline added or removed).
void set_raw_thread_name(const std::string& name) {
  const std::string path = "/proc/self/task/" + std::to_string(syscall(SYS_gettid)) + "/comm";
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, name.data(), name.size()) < 0) {
    std::fprintf(stderr, "fake_guest: can't write %s: %s\n", path.c_str(), std::strerror(errno));
  }
  if (fd >= 0) close(fd);
}

// Spins for 0.2 ms, sleeps for 2 ms, until told to stop.
void burst_until_stopped() {
  using Clock = std::chrono::steady_clock;
  while (g_spin.load(std::memory_order_relaxed)) {
    const auto until = Clock::now() + std::chrono::microseconds(200);
    while (Clock::now() < until) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void thread_body(const std::string& name, bool raw, bool busy, bool bursty, std::latch& named) {
  if (raw) {
    set_raw_thread_name(name);
  } else if (const int error = pthread_setname_np(pthread_self(), name.c_str()); error != 0) {
    std::fprintf(stderr, "fake_guest: can't name a thread '%s': %s\n", name.c_str(),
                 std::strerror(error));
  }
  named.count_down();
  if (busy) {
    volatile std::uint64_t counter = 0;
    while (g_spin.load(std::memory_order_relaxed)) counter = counter + 1;
  }
  if (bursty) burst_until_stopped();
  for (;;) pause();  // every signal is blocked here: the main thread takes them
}

// One fake guest: names its threads, prints its pid, waits for SIGTERM/SIGINT.
int run_guest(const Options& options, const sigset_t& stop_signals) {
  struct Spec {
    std::string name;
    bool raw;
  };
  std::vector<Spec> specs;
  for (int n = 0; n < options.threads; ++n) {
    specs.push_back({"CPU " + std::to_string(n) + "/" + options.accel, false});
  }
  if (options.iothread) specs.push_back({"IO io1", false});
  for (const auto& name : options.hostile_names) specs.push_back({name, true});

  std::latch named(static_cast<std::ptrdiff_t>(specs.size()));
  std::vector<std::thread> threads;
  threads.reserve(specs.size());
  for (const auto& spec : specs) {
    threads.emplace_back(thread_body, spec.name, spec.raw, options.busy, options.bursty,
                         std::ref(named));
  }
  named.wait();
  if (!options.quiet) {
    std::printf("%d\n", static_cast<int>(getpid()));
    std::fflush(stdout);
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::fflush(stdout);
  _exit(0);  // the other threads never return: end the process at once
}

// --guests P: P children, each this program exec'ed as qemu-system-x86_64 NAME-i.
int run_guests(const Options& options, const sigset_t& stop_signals) {
  const pid_t parent = getpid();
  std::vector<pid_t> children;
  for (int i = 0; i < options.guests; ++i) {
    const pid_t child = fork();
    if (child < 0) {
      std::perror("fake_guest: fork");
      break;
    }
    if (child == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(0);
      std::vector<std::string> args = {
          "qemu-system-x86_64", "-name",
          "guest=" + options.name + "-" + std::to_string(i) + ",debug-threads=on", "--quiet"};
      args.insert(args.end(), options.passthrough.begin(), options.passthrough.end());
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      std::perror("fake_guest: exec /proc/self/exe");
      _exit(127);
    }
    children.push_back(child);
    std::printf("%d\n", static_cast<int>(child));
  }
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  for (const pid_t child : children) kill(child, SIGTERM);
  for (const pid_t child : children) waitpid(child, nullptr, 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  // The main thread's name, as the kernel would give QEMU's: argv[0]'s base name, 15 bytes.
  if (argc > 0) {
    const std::string_view program = argv[0];
    const auto slash = program.rfind('/');
    const std::string comm(program.substr(slash == std::string_view::npos ? 0 : slash + 1), 0, 15);
    prctl(PR_SET_NAME, comm.c_str());
  }
  // Block the stop signals in every thread; the main thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (options.guests > 0) return run_guests(options, stop_signals);
  return run_guest(options, stop_signals);
}
