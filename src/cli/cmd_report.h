// `vcpumap report`, registered by add_record_commands beside `record`.
#pragma once

#include "cli/options.h"

namespace vcpumap::cli {

// Adds `report FILE [--html OUT] [--timeline-rows N]`.
void add_report_command(CLI::App& app, const GlobalOptions& global, int& exit_code);

}  // namespace vcpumap::cli
