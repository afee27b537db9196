// `vcpumap report --html`: one self-contained HTML file (no external assets, works offline) with
// an SVG timeline (host-CPU lanes coloured by vCPU, or vCPU lanes coloured by host CPU), a
// vCPU x CPU residency heat map, tooltips and the summary table.
#pragma once

#include <string>
#include <string_view>

#include "record/analysis.h"

namespace vcpumap::views {

// The whole HTML document. The timeline has at most `max_columns` time columns per lane (the
// recording's buckets are merged to fit), so an hour of 64 vCPUs stays light to draw.
std::string render_report_html(const record::Report& report, const std::string& title,
                               int max_columns = 600);
// `text` safe inside HTML text and attribute values; control bytes become '?'.
std::string html_escape(std::string_view text);

}  // namespace vcpumap::views
