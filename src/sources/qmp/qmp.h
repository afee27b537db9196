// A minimal QMP client: asks a QEMU monitor socket which thread runs each vCPU.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "util/result.h"

namespace vcpumap::qmp {

// vCPU index -> host thread id, from query-cpus-fast's "cpu-index" and "thread-id".
Result<std::map<int, int>> query_vcpu_threads(
    const std::string& socket_path,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// Parses a query-cpus-fast reply ({"return": [...]}) into vCPU index -> thread id.
Result<std::map<int, int>> parse_query_cpus_fast(std::string_view reply);

}  // namespace vcpumap::qmp
