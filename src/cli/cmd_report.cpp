// `vcpumap report FILE [--html OUT]`: the summary and timeline of a recording, as text, JSON
// (--json) or one self-contained HTML file.
#include "cli/cmd_report.h"

#include <fstream>
#include <memory>

#include <fmt/core.h>

#include "record/analysis.h"
#include "views/json.h"
#include "views/report_html.h"
#include "views/report_text.h"

namespace vcpumap::cli {
namespace {

struct ReportCliOptions {
  std::string file = "vcpumap.rec";
  std::string html;
  int rows = 40;
  bool no_timeline = false;
};

int run_report(const GlobalOptions& global, const ReportCliOptions& cli) {
  auto report = record::analyze_file(cli.file, {});
  if (!report) return report_error(report.error());
  if (!report->problem.empty()) fmt::print(stderr, "vcpumap: {}: {}\n", cli.file, report->problem);
  if (!cli.html.empty()) {
    std::ofstream out(cli.html, std::ios::binary | std::ios::trunc);
    out << views::render_report_html(*report, "vcpumap report: " + cli.file);
    out.close();
    if (!out) {
      return report_error(make_error(ExitCode::failure, "can't write {}", cli.html));
    }
    fmt::print(stderr, "vcpumap: wrote {}\n", cli.html);
  }
  if (global.json) {
    fmt::print("{}\n", views::dump_json(views::report_json(*report), true));
  } else if (cli.html.empty()) {
    fmt::print("{}", views::render_report_summary(*report));
    if (!cli.no_timeline) {
      fmt::print("\n{}", views::render_report_timeline(*report, cli.rows));
    }
  }
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app, const GlobalOptions& global, int& exit_code) {
  auto options = std::make_shared<ReportCliOptions>();
  auto* report = app.add_subcommand(
      "report", "summary and timeline of a recording: text, --json, or --html OUT");
  report->add_option("file", options->file, "the recording (default vcpumap.rec)")
      ->type_name("FILE");
  report
      ->add_option("--html", options->html,
                   "write one self-contained HTML report (timeline, heat map, summary) to OUT")
      ->type_name("OUT");
  report->add_option("--rows", options->rows, "rows of the text timeline (default 40)")
      ->type_name("N")
      ->check(CLI::Range(1, 100000));
  report->add_flag("--no-timeline", options->no_timeline, "print the summary only");
  report->callback([&global, &exit_code, options] { exit_code = run_report(global, *options); });
}

}  // namespace vcpumap::cli
