#include "views/table.h"

#include <algorithm>

namespace vcpumap::views {

std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::vector<std::size_t> Table::widths() const {
  std::vector<std::size_t> widths(header_.size(), 0);
  for (std::size_t i = 0; i < header_.size(); ++i) widths[i] = display_width(header_[i]);
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(row[i]));
    }
  }
  return widths;
}

namespace {

std::string render_line(const std::vector<std::string>& cells,
                        const std::vector<std::size_t>& widths, const std::string& prefix,
                        std::size_t gap) {
  std::string line = prefix;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) line.append(widths[i] - display_width(cells[i]) + gap, ' ');
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line + '\n';
}

}  // namespace

std::string Table::render(const std::string& indent) const {
  const auto column_widths = widths();
  std::string text = render_line(header_, column_widths, indent, 2);
  for (const auto& row : rows_) text += render_line(row, column_widths, indent, 2);
  return text;
}

std::string Table::render_virsh() const {
  const auto column_widths = widths();
  std::string text = render_line(header_, column_widths, " ", 3);
  // vshTable: the divider is sum(width + 3) dashes, whatever the last column holds.
  std::size_t dashes = 0;
  for (const auto width : column_widths) dashes += width + 3;
  text.append(dashes, '-');
  text += '\n';
  for (const auto& row : rows_) text += render_line(row, column_widths, " ", 3);
  return text;
}

}  // namespace vcpumap::views
