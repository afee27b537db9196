#include <fmt/core.h>

#include "cli/options.h"

namespace vcpumap::cli {

int report_error(const Error& error) {
  fmt::print(stderr, "vcpumap: {}\n", error.message);
  return static_cast<int>(error.exit_code);
}

void print_notes(const Snapshot& snapshot) {
  for (const auto& note : snapshot.notes) fmt::print(stderr, "vcpumap: note: {}\n", note);
  for (const auto& vm : snapshot.vms) print_notes(vm);
}

void print_notes(const Vm& vm) {
  for (const auto& note : vm.notes) fmt::print(stderr, "vcpumap: note: {}\n", note);
}

}  // namespace vcpumap::cli
