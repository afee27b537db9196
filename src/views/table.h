// Text tables: left-aligned columns padded to their widest cell.
#pragma once

#include <string>
#include <vector>

namespace vcpumap::views {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}

  // Adds a row; it must have as many cells as the header.
  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }

  // Columns separated by two spaces, each line starting with `indent`; no trailing blanks.
  std::string render(const std::string& indent = "") const;
  // virsh's vshTable layout (tools/vsh-table.c): each cell is " " + cell, padded to the column's
  // width + 2 except in the last column; under the header a divider of sum(width + 3) dashes.
  std::string render_virsh() const;

 private:
  std::vector<std::size_t> widths() const;

  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text (code points; vcpumap prints no wide characters).
std::size_t display_width(const std::string& text);

}  // namespace vcpumap::views
