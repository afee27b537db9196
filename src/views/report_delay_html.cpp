#include "views/report_delay_html.h"

#include <algorithm>
#include <map>
#include <vector>

#include <fmt/core.h>

#include "views/delay_view.h"
#include "views/report_html.h"

namespace vcpumap::views {
namespace {

constexpr int kBarWidth = 360;
constexpr int kLabelWidth = 120;
constexpr int kRowHeight = 18;

// A hue per kind; culprits of one kind alternate in lightness so neighbours stay apart.
int kind_hue(CulpritKind kind) {
  switch (kind) {
    case CulpritKind::vcpu:
      return 215;
    case CulpritKind::emulator:
      return 35;
    case CulpritKind::iothread:
      return 280;
    case CulpritKind::host:
      return 0;
    case CulpritKind::kernel:
      return 130;
    case CulpritKind::other:
      return -1;
  }
  return -1;
}

std::string kind_colour(CulpritKind kind, int shade) {
  const int hue = kind_hue(kind);
  if (hue < 0) return shade % 2 ? "#bbb" : "#999";
  return fmt::format("hsl({},65%,{}%)", hue, 38 + (shade % 4) * 10);
}

}  // namespace

std::string render_delay_bars(const record::Report& report) {
  if (report.host.mode != record::Mode::exact) return {};
  if (!report.has_delay_split) {
    return "<div id=\"delay\"><h2>Waited behind</h2><div class=\"meta\">n/a: a version-1 "
           "recording keeps no culprits</div></div>\n";
  }
  int rows = 0;
  for (const auto& vm : report.vms) rows += int(vm.vcpus.size());
  const double window = double(std::max<std::uint64_t>(report.duration_ns, 1));
  std::string svg = fmt::format(
      "<svg id=\"delay-bars\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">\n",
      kLabelWidth + kBarWidth + 60, 20 + rows * kRowHeight);
  int row = 0;
  for (const auto& vm : report.vms) {
    for (const auto& vcpu : vm.vcpus) {
      const double y = 20 + row * kRowHeight;
      const std::string name = fmt::format("{} vCPU {}", vm.display_name(), vcpu.vcpu);
      svg += fmt::format(
          "<text x=\"{}\" y=\"{:.1f}\" class=\"lane\">{}</text><rect x=\"{}\" y=\"{:.1f}\" "
          "width=\"{}\" height=\"{}\" class=\"bg\"/>\n",
          kLabelWidth - 6, y + kRowHeight * 0.7, html_escape(name), kLabelWidth, y, kBarWidth,
          kRowHeight - 2);
      double x = kLabelWidth;
      std::map<CulpritKind, int> shades;
      const std::uint64_t total = vcpu.delay ? vcpu.delay->run_delay_ns.value_or(0) : 0;
      for (const auto& culprit : vcpu.delay ? vcpu.delay->behind : std::vector<Culprit>{}) {
        const double width = kBarWidth * double(culprit.ns) / window;
        if (width < 0.05) continue;
        svg += fmt::format(
            "<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\" "
            "class=\"culprit culprit-{}\"><title>{} waited {:.3f} s behind {}: {} ({:.1f}% of "
            "its delay)</title></rect>\n",
            x, y, width, kRowHeight - 2, kind_colour(culprit.kind, shades[culprit.kind]++),
            to_string(culprit.kind), html_escape(name), double(culprit.ns) / 1e9,
            to_string(culprit.kind), html_escape(culprit_text(culprit)),
            total ? 100.0 * double(culprit.ns) / double(total) : 0.0);
        x += width;
      }
      svg += fmt::format(
          "<text x=\"{}\" y=\"{:.1f}\" class=\"axis\" "
          "style=\"text-anchor:start\">{:.1f}%</text>\n",
          kLabelWidth + kBarWidth + 4, y + kRowHeight * 0.7, 100.0 * double(total) / window);
      ++row;
    }
  }
  svg += "</svg>\n";
  std::string legend = "<div class=\"legend\">";
  for (const CulpritKind kind : {CulpritKind::vcpu, CulpritKind::emulator, CulpritKind::iothread,
                                 CulpritKind::host, CulpritKind::kernel, CulpritKind::other}) {
    legend += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", kind_colour(kind, 0),
                          to_string(kind));
  }
  legend += "</div>\n";
  return "<div id=\"delay\"><h2>Waited behind</h2><div class=\"meta\">bar length = the vCPU's "
         "run delay as a share of the recording; hover for each culprit</div>\n" +
         svg + legend + "</div>\n";
}

}  // namespace vcpumap::views
