// QEMU's reply to QMP's query-cpus-fast (qmp::parse_query_cpus_fast): vCPU index -> thread id.
#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "sources/qmp/qmp.h"

using namespace vcpumap;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto threads = qmp::parse_query_cpus_fast(text);
  if (!threads) return 0;
  // Bounds: a vCPU index counts from 0, a thread id is a Linux tid (1 or more), and the map
  // has no more entries than the reply has objects.
  std::size_t objects = 0;
  for (const char c : text) objects += c == '{' ? 1 : 0;
  FUZZ_CHECK(threads->size() + 1 <= objects);
  for (const auto& [index, tid] : *threads) FUZZ_CHECK(index >= 0 && tid > 0);
  // Bounds: each pair is one the reply holds, whole (not a number cut to fit an int).
  const auto json = nlohmann::json::parse(text, nullptr, false);
  for (const auto& [index, tid] : *threads) {
    bool found = false;
    for (const auto& cpu : json["return"]) {
      found = found || (cpu.is_object() && cpu.value("cpu-index", nlohmann::json()) == index &&
                        cpu.value("thread-id", nlohmann::json()) == tid);
    }
    FUZZ_CHECK(found);
  }
  // Round trip: the reply QEMU would send for them reads back the same.
  nlohmann::json reply = {{"return", nlohmann::json::array()}};
  for (const auto& [index, tid] : *threads) {
    reply["return"].push_back({{"cpu-index", index},
                               {"qom-path", "/machine/unattached/device[0]"},
                               {"thread-id", tid},
                               {"props", {{"core-id", 0}, {"thread-id", 0}, {"socket-id", index}}},
                               {"target", "x86_64"}});
  }
  const auto again = qmp::parse_query_cpus_fast(reply.dump());
  FUZZ_CHECK(again.ok() && *again == *threads);
  return 0;
}
