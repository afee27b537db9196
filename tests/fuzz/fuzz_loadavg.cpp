// /proc/loadavg (procfs::parse_loadavg): "0.52 0.40 0.33 2/345 6789".
#include <cmath>

#include <fmt/format.h>

#include "fuzz.h"
#include "sources/procfs/cpu_stat.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto load = procfs::parse_loadavg(text);
  if (!load) return 0;
  // Bounds: a load average is a count of tasks: finite and not negative (the views and the
  // exporter print it as it is).
  for (const double value : {load->one, load->five, load->fifteen}) {
    FUZZ_CHECK(std::isfinite(value) && value >= 0);
  }
  // Round trip: fmt prints the shortest text that reads back as the same double.
  const auto again = procfs::parse_loadavg(
      fmt::format("{} {} {} 1/100 4242\n", load->one, load->five, load->fifteen));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->one == load->one && again->five == load->five &&
             again->fifteen == load->fifteen);
  return 0;
}
