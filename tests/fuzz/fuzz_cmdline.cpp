// /proc/PID/cmdline (procfs::parse_cmdline) and what vcpumap reads from it and from thread names
// (identify_vm, classify_thread in src/core/identify.h).
#include <fmt/format.h>

#include "core/identify.h"
#include "fuzz.h"
#include "sources/procfs/parse.h"

using namespace vcpumap;

namespace {

bool holds(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// QEMU writes a literal ',' in an option value as ",,".
std::string qemu_escaped(std::string_view name) {
  std::string out;
  for (const char c : name) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto argv = procfs::parse_cmdline(text);
  // Round trip: the arguments joined by NUL are the file (its final NUL aside).
  std::string joined;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (i > 0) joined += '\0';
    joined += argv[i];
  }
  FUZZ_CHECK(joined == text || joined + '\0' == text);
  FUZZ_CHECK(argv.size() <= size + 1);

  // Bounds: a VM's name and UUID come from its command line.
  if (const auto vm = identify_vm(argv)) {
    FUZZ_CHECK(holds(text, vm->uuid));
    FUZZ_CHECK(holds(text, vm->hypervisor == Hypervisor::qemu ? qemu_escaped(vm->name) : vm->name));
  }
  // A thread name (the whole input read as one): a vCPU's number and an I/O thread's id are in it.
  for (const auto hypervisor : {Hypervisor::qemu, Hypervisor::firecracker,
                                Hypervisor::cloud_hypervisor, Hypervisor::crosvm}) {
    const auto thread = classify_thread(hypervisor, text, 2, 1);
    if (thread.role == ThreadRole::vcpu) {
      FUZZ_CHECK(thread.vcpu >= 0 && thread.vcpu < 1000000);
      FUZZ_CHECK(holds(text, fmt::to_string(thread.vcpu)));
    } else {
      FUZZ_CHECK(thread.vcpu == -1);
    }
    FUZZ_CHECK(holds(text, thread.iothread));
  }
  return 0;
}
