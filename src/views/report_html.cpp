#include "views/report_html.h"

#include <algorithm>
#include <functional>
#include <map>

#include <fmt/core.h>

#include "views/report_delay_html.h"
#include "views/report_text.h"

namespace vcpumap::views {
namespace {

constexpr int kLabelWidth = 130;
constexpr int kPlotWidth = 1100;
constexpr int kRightMargin = 30;  // room for half of the last axis label

struct VcpuRef {
  int vm = 0;
  const record::ThreadReport* thread = nullptr;
  int index = 0;  // among all vCPUs
};

std::string vcpu_colour(const VcpuRef& ref) {
  // A hue per VM, far apart for the first few VMs; its vCPUs vary around it in hue and lightness.
  const int hue = (ref.vm * 137 + (ref.thread->vcpu % 8) * 9) % 360;
  const int light = 30 + (ref.thread->vcpu % 4) * 12;
  return fmt::format("hsl({},65%,{}%)", hue, light);
}

std::string cpu_colour(int lane, int lanes) {
  return fmt::format("hsl({},70%,48%)", lanes > 0 ? lane * 360 / lanes : 0);
}

std::string vcpu_name(const record::Report& report, const VcpuRef& ref) {
  return fmt::format("{} vCPU {}", report.vms[ref.vm].display_name(), ref.thread->vcpu);
}

// One time column: per lane, time of each vCPU key.
using Column = std::vector<std::map<std::uint32_t, std::uint64_t>>;

Column column(const record::Report& report, std::size_t first, std::size_t count) {
  Column out(report.cpus.size());
  const auto& cells = report.timeline.cells;
  for (std::size_t b = first; b < std::min(cells.size(), first + count); ++b) {
    for (std::size_t lane = 0; lane < cells[b].size(); ++lane) {
      for (const auto& cell : cells[b][lane]) out[lane][cell.key] += cell.ns;
    }
  }
  return out;
}

// A rectangle run: consecutive columns of one lane with the same colour and shade.
struct Run {
  int start = 0, end = 0;
  int colour = -1;  // key index or CPU lane; -1: nothing
  int shade = 0;    // busy share in quarters (1..4)
  std::uint64_t ns = 0;
};

void emit_runs(std::string& svg, const std::vector<std::vector<Run>>& lanes, double column_px,
               int lane_height, std::uint64_t column_ns,
               const std::function<std::string(int)>& colour_of,
               const std::function<std::string(int, int)>& describe) {
  for (std::size_t lane = 0; lane < lanes.size(); ++lane) {
    for (const Run& run : lanes[lane]) {
      if (run.colour < 0) continue;
      const double x = kLabelWidth + run.start * column_px;
      const double width = (run.end - run.start) * column_px;
      const double busy = double(run.ns) / double(column_ns * (run.end - run.start));
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\" "
          "fill-opacity=\"{:.2f}\"><title>{} · {:.3f}–{:.3f} s · {:.0f}% busy</title></rect>\n",
          x, 20 + int(lane) * lane_height, std::max(width, 0.5), lane_height - 1,
          colour_of(run.colour), 0.25 + 0.75 * std::min(1.0, busy), describe(int(lane), run.colour),
          double(run.start * column_ns) / 1e9, double(run.end * column_ns) / 1e9, busy * 100);
    }
  }
}

void add_to_runs(std::vector<Run>& runs, int col, int colour, std::uint64_t ns,
                 std::uint64_t column_ns) {
  const int shade =
      colour < 0
          ? 0
          : 1 + int(std::min<std::uint64_t>(3, ns * 4 / std::max<std::uint64_t>(1, column_ns)));
  if (!runs.empty() && runs.back().colour == colour && runs.back().shade == shade &&
      runs.back().end == col) {
    runs.back().end = col + 1;
    runs.back().ns += ns;
  } else {
    runs.push_back({col, col + 1, colour, shade, ns});
  }
}

// A run of columns of one host-CPU lane where the same vCPUs share it in the same proportions
// (in eighths of the lane): each becomes a stacked bar, so a vCPU that never has the largest
// share still shows. At most kMaxStacked vCPUs a bar; the rest of the lane's time is one grey
// "other vCPUs" part, so an overcommitted host costs at most kMaxStacked + 1 rectangles a cell
// and the page's size is bounded by lanes x columns, not by how many vCPUs pass through.
constexpr std::size_t kMaxStacked = 3;
constexpr int kOtherVcpus = -1;

struct StackRun {
  int start = 0, end = 0;
  std::vector<std::pair<int, int>> parts;  // (vCPU ref or kOtherVcpus, eighths)
  std::vector<std::uint64_t> ns;
};

void add_to_stack(std::vector<StackRun>& runs, int col, const std::map<int, std::uint64_t>& time,
                  std::uint64_t column_ns) {
  std::vector<std::pair<int, std::uint64_t>> kept(time.begin(), time.end());
  std::uint64_t others = 0;
  if (kept.size() > kMaxStacked) {
    std::stable_sort(kept.begin(), kept.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    for (std::size_t i = kMaxStacked; i < kept.size(); ++i) others += kept[i].second;
    kept.resize(kMaxStacked);
    std::sort(kept.begin(), kept.end());  // back in vCPU order: a stable stacking order
    kept.push_back({kOtherVcpus, others});
  }
  std::vector<std::pair<int, int>> parts;
  std::vector<std::uint64_t> ns;
  for (auto [ref, t] : kept) {
    const int eighths = int(std::min<std::uint64_t>(8, (t * 8 + column_ns / 2) / column_ns));
    if (eighths == 0) continue;
    parts.push_back({ref, eighths});
    ns.push_back(t);
  }
  if (!runs.empty() && runs.back().end == col && runs.back().parts == parts) {
    runs.back().end = col + 1;
    for (std::size_t i = 0; i < ns.size(); ++i) runs.back().ns[i] += ns[i];
  } else if (!parts.empty()) {
    runs.push_back({col, col + 1, std::move(parts), std::move(ns)});
  }
}

void emit_stacks(std::string& svg, const std::vector<std::vector<StackRun>>& lanes,
                 double column_px, int lane_height, std::uint64_t column_ns,
                 const std::function<std::string(int)>& colour_of,
                 const std::function<std::string(int, int)>& describe) {
  for (std::size_t lane = 0; lane < lanes.size(); ++lane) {
    for (const StackRun& run : lanes[lane]) {
      double y = 20 + int(lane) * lane_height + lane_height - 1;
      for (std::size_t i = 0; i < run.parts.size(); ++i) {
        const auto [ref, eighths] = run.parts[i];
        const double height =
            std::min(double(lane_height - 1) * eighths / 8.0, y - (20 + int(lane) * lane_height));
        y -= height;
        const double busy = double(run.ns[i]) / double(column_ns * (run.end - run.start));
        svg += fmt::format(
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">"
            "<title>{} · {:.3f}–{:.3f} s · {:.0f}% of the CPU</title></rect>\n",
            kLabelWidth + run.start * column_px, y,
            std::max((run.end - run.start) * column_px, 0.5), height, colour_of(ref),
            describe(int(lane), ref), double(run.start * column_ns) / 1e9,
            double(run.end * column_ns) / 1e9, busy * 100);
      }
    }
  }
}

std::string svg_frame(int lanes, int lane_height, double seconds, const std::string& id,
                      const std::vector<std::string>& labels, const std::string& body,
                      bool visible) {
  const int height = 20 + lanes * lane_height + 24;
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" style=\"display:{}\">\n",
      id, kLabelWidth + kPlotWidth + kRightMargin, height, visible ? "block" : "none");
  for (int lane = 0; lane < lanes; ++lane) {
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" class=\"lane\">{}</text><rect x=\"{}\" y=\"{}\" width=\"{}\" "
        "height=\"{}\" class=\"bg\"/>\n",
        kLabelWidth - 6, 20 + lane * lane_height + lane_height * 0.7, html_escape(labels[lane]),
        kLabelWidth, 20 + lane * lane_height, kPlotWidth, lane_height - 1);
  }
  svg += body;
  for (int tick = 0; tick <= 10; ++tick) {
    const double x = kLabelWidth + kPlotWidth * tick / 10.0;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"16\" y2=\"{1}\" class=\"tick\"/>"
        "<text x=\"{0:.1f}\" y=\"{2}\" class=\"axis\">{3:.1f} s</text>\n",
        x, 20 + lanes * lane_height, 20 + lanes * lane_height + 16, seconds * tick / 10.0);
  }
  return svg + "</svg>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
    }
  }
  return out;
}

std::string render_report_html(const record::Report& report, const std::string& title,
                               int max_columns) {
  std::vector<VcpuRef> vcpus;
  std::map<std::uint32_t, int> ref_of_key;
  for (std::size_t v = 0; v < report.vms.size(); ++v) {
    for (const auto& thread : report.vms[v].vcpus) {
      ref_of_key[thread.key] = int(vcpus.size());
      vcpus.push_back({int(v), &thread, int(vcpus.size())});
    }
  }
  const std::size_t buckets = report.timeline.cells.size();
  const std::size_t per_column =
      std::max<std::size_t>(1, (buckets + max_columns - 1) / std::max(1, max_columns));
  const int columns = int((buckets + per_column - 1) / per_column);
  const std::uint64_t column_ns = per_column * report.timeline.bucket_ns;
  const double column_px = double(kPlotWidth) / std::max(1, columns);
  const int cpu_lanes = int(report.cpus.size());

  std::vector<std::vector<StackRun>> by_cpu(cpu_lanes);
  std::vector<std::vector<Run>> by_vcpu(vcpus.size());
  for (int col = 0; col < columns; ++col) {
    const Column totals = column(report, std::size_t(col) * per_column, per_column);
    std::vector<std::pair<int, std::uint64_t>> vcpu_best(vcpus.size(), {-1, 0});
    std::vector<std::uint64_t> vcpu_total(vcpus.size(), 0);
    for (int lane = 0; lane < cpu_lanes; ++lane) {
      std::map<int, std::uint64_t> time;  // by vCPU ref: a stable stacking order
      for (auto [key, ns] : totals[lane]) {
        auto ref = ref_of_key.find(key);
        if (ref == ref_of_key.end()) continue;
        time[ref->second] += ns;
        vcpu_total[ref->second] += ns;
        if (ns > vcpu_best[ref->second].second) vcpu_best[ref->second] = {lane, ns};
      }
      add_to_stack(by_cpu[lane], col, time, column_ns);
    }
    for (std::size_t i = 0; i < vcpus.size(); ++i) {
      add_to_runs(by_vcpu[i], col, vcpu_best[i].first, std::min(vcpu_total[i], column_ns),
                  column_ns);
    }
  }
  const double seconds = double(columns * column_ns) / 1e9;
  const int cpu_lane_height = std::clamp(560 / std::max(1, cpu_lanes), 10, 44);
  const int vcpu_lane_height = std::clamp(800 / std::max<int>(1, vcpus.size()), 8, 24);

  std::string cpu_body, vcpu_body;
  emit_stacks(
      cpu_body, by_cpu, column_px, cpu_lane_height, column_ns,
      [&](int ref) { return ref == kOtherVcpus ? std::string("#999") : vcpu_colour(vcpus[ref]); },
      [&](int lane, int ref) {
        return fmt::format(
            "CPU {} · {}", report.cpus[lane],
            ref == kOtherVcpus ? "other vCPUs" : html_escape(vcpu_name(report, vcpus[ref])));
      });
  emit_runs(
      vcpu_body, by_vcpu, column_px, vcpu_lane_height, column_ns,
      [&](int lane) { return cpu_colour(lane, cpu_lanes); },
      [&](int ref, int lane) {
        return fmt::format("{} · on CPU {}", html_escape(vcpu_name(report, vcpus[ref])),
                           report.cpus[lane]);
      });
  std::vector<std::string> cpu_labels, vcpu_labels;
  for (int cpu : report.cpus) cpu_labels.push_back(fmt::format("CPU {}", cpu));
  for (const auto& ref : vcpus) vcpu_labels.push_back(vcpu_name(report, ref));

  std::string html = fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{0}</title>
<style>
body {{ font: 13px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }} h2 {{ font-size: 15px; margin: 22px 0 6px; }}
.meta {{ color: #555; }} .warn {{ color: #a40; font-weight: bold; }}
.lane {{ font-size: 11px; text-anchor: end; fill: #333; }}
.axis {{ font-size: 10px; text-anchor: middle; fill: #555; }}
.tick {{ stroke: #ccc; stroke-width: 1; }} .bg {{ fill: #f4f4f4; }}
rect:hover {{ stroke: #000; stroke-width: 1; }}
button {{ font: inherit; padding: 3px 10px; margin-right: 6px; border: 1px solid #888;
  background: #fff; border-radius: 3px; cursor: pointer; }}
button.on {{ background: #333; color: #fff; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 8px; border: 1px solid #ddd; }}
th {{ background: #f0f0f0; text-align: left; }} td.n {{ text-align: right; }}
#heatmap td.h {{ text-align: center; min-width: 44px; }}
.legend span {{ display: inline-block; margin: 2px 10px 2px 0; }}
.legend i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: -2px; }}
</style></head><body>
<h1>{0}</h1>
)",
                                 html_escape(title));
  html += fmt::format(
      "<div class=\"meta\">host {} (kernel {}), {} CPUs · {} recording of {:.3f} s · {} samples, "
      "{} events, {} lost events</div>\n",
      html_escape(report.host.hostname), html_escape(report.host.kernel), report.cpus.size(),
      record::to_string(report.host.mode), double(report.duration_ns) / 1e9, report.samples,
      report.events, report.lost_events);
  if (report.lost_events > 0) {
    html += fmt::format(
        "<div class=\"warn\">The kernel dropped {} events: exact figures are lower "
        "bounds.</div>\n",
        report.lost_events);
  }
  if (!report.problem.empty()) {
    html += fmt::format("<div class=\"warn\">{}</div>\n", html_escape(report.problem));
  }
  html += fmt::format(
      "<h2>Timeline</h2>\n<div><button id=\"show-cpu\" class=\"on\">host-CPU lanes, coloured by "
      "vCPU</button><button id=\"show-vcpu\">vCPU lanes, coloured by host CPU</button> "
      "<span class=\"meta\">one column = {:.3f} s; bar height (CPU lanes) or shade (vCPU lanes) = "
      "share of the time; hover for details</span>"
      "</div>\n",
      double(column_ns) / 1e9);
  html += "<div class=\"legend\" id=\"legend-cpu\">";
  for (const auto& ref : vcpus) {
    html += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", vcpu_colour(ref),
                        html_escape(vcpu_name(report, ref)));
  }
  const bool crowded = std::any_of(by_cpu.begin(), by_cpu.end(), [](const auto& lane) {
    return std::any_of(lane.begin(), lane.end(), [](const StackRun& run) {
      return !run.parts.empty() && run.parts.back().first == kOtherVcpus;
    });
  });
  if (crowded) {
    html += fmt::format(
        "<span><i style=\"background:#999\"></i>other vCPUs (beyond the {} with the most time "
        "on that CPU in that column)</span>",
        kMaxStacked);
  }
  html += "</div>\n<div class=\"legend\" id=\"legend-vcpu\" style=\"display:none\">";
  for (int lane = 0; lane < cpu_lanes; ++lane) {
    html += fmt::format("<span><i style=\"background:{}\"></i>CPU {}</span>",
                        cpu_colour(lane, cpu_lanes), report.cpus[lane]);
  }
  // The culprit bars sit beside the timeline: who each vCPU waited behind, and when it ran.
  html += "</div>\n<div style=\"display:flex;flex-wrap:wrap;align-items:flex-start;gap:16px\">";
  html += "<div id=\"timeline\">\n";
  html +=
      svg_frame(cpu_lanes, cpu_lane_height, seconds, "timeline-cpu", cpu_labels, cpu_body, true);
  html += svg_frame(int(vcpus.size()), vcpu_lane_height, seconds, "timeline-vcpu", vcpu_labels,
                    vcpu_body, false);
  html += "</div>\n" + render_delay_bars(report) + "</div>\n";
  html +=
      "<h2>Residency: share of each vCPU's CPU time on each host CPU</h2>\n"
      "<table id=\"heatmap\"><tr><th>vCPU</th>";
  for (int cpu : report.cpus) html += fmt::format("<th>CPU {}</th>", cpu);
  html += "</tr>\n";
  for (const auto& ref : vcpus) {
    html += fmt::format("<tr><th>{}</th>", html_escape(vcpu_name(report, ref)));
    const auto shares = ref.thread->residency(report.cpus);
    for (int cpu : report.cpus) {
      const auto it = shares.find(cpu);
      const double share = it == shares.end() ? 0 : it->second;
      html += fmt::format(
          "<td class=\"h\" style=\"background:rgba(200,50,30,{:.2f});color:{}\" title=\"{} on "
          "CPU {}: {:.1f}%\">{:.0f}%</td>",
          share, share > 0.55 ? "#fff" : "#222", html_escape(vcpu_name(report, ref)), cpu,
          share * 100, share * 100);
    }
    html += "</tr>\n";
  }
  html +=
      "</table>\n<h2>Summary</h2>\n<table id=\"summary\"><tr><th>VM</th><th>pid</th>"
      "<th>vCPU</th><th>tid</th><th>migrations</th><th>per s</th><th>crossed core / "
      "package / node</th><th>longest stay</th><th>run delay</th></tr>\n";
  const double duration_s = double(report.duration_ns) / 1e9;
  for (const auto& ref : vcpus) {
    const auto& vm = report.vms[ref.vm];
    const auto& t = *ref.thread;
    html += fmt::format(
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
        "<td class=\"n\" title=\"source: {}\">{}</td><td class=\"n\">{:.2f}</td><td>{} / {} / "
        "{}</td><td>{:.3f} s on CPU {}</td><td>{}</td></tr>\n",
        html_escape(vm.display_name()), vm.pid, t.vcpu, t.tid,
        record::to_string(t.migrations_source), t.migrations,
        duration_s > 0 ? double(t.migrations) / duration_s : 0.0, t.crossed_core, t.crossed_package,
        t.crossed_node, double(t.longest_stay_ns) / 1e9, t.longest_stay_cpu,
        t.run_delay_ns
            ? fmt::format("{:.3f} s ({:.1f}%)", double(*t.run_delay_ns) / 1e9,
                          duration_s > 0 ? double(*t.run_delay_ns) / 1e7 / duration_s : 0.0)
            : "n/a");
  }
  html += R"(</table>
<script>
(function () {
  var views = {cpu: ['timeline-cpu', 'legend-cpu'], vcpu: ['timeline-vcpu', 'legend-vcpu']};
  function show(which) {
    Object.keys(views).forEach(function (name) {
      views[name].forEach(function (id) {
        document.getElementById(id).style.display = name === which ? 'block' : 'none';
      });
      document.getElementById('show-' + name).className = name === which ? 'on' : '';
    });
  }
  document.getElementById('show-cpu').addEventListener('click', function () { show('cpu'); });
  document.getElementById('show-vcpu').addEventListener('click', function () { show('vcpu'); });
})();
</script>
</body></html>
)";
  return html;
}

}  // namespace vcpumap::views
