#include "views/top_screen.h"

#include <curses.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <string>

#include <fmt/format.h>

#include "collect/sampling_loop.h"
#include "util/duration.h"
#include "util/text.h"

namespace vcpumap::views {
namespace {

using Clock = std::chrono::steady_clock;

// Puts the terminal back however the view ends (a thrown exception included).
class Screen {
 public:
  Screen() {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
  }
  ~Screen() { endwin(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;
};

// Writes `text` at (row, 0), cut to the screen's width.
void put_line(int row, const std::string& text, int attributes = A_NORMAL) {
  if (row < 0 || row >= LINES) return;
  attron(attributes);
  mvaddnstr(row, 0, text.c_str(), COLS);
  attroff(attributes);
}

// Asks for a line of text on the bottom line; Escape or an empty line gives "".
std::string prompt(const std::string& question) {
  timeout(-1);
  move(LINES - 1, 0);
  clrtoeol();
  put_line(LINES - 1, question, A_BOLD);
  echo();
  curs_set(1);
  char answer[128] = {};
  getnstr(answer, sizeof answer - 1);
  noecho();
  curs_set(0);
  return answer;
}

struct View {
  const Sample* sample = nullptr;
  TopWaits waits = nullptr;
  TopSettings& settings;
  int scroll = 0;
  int selected = 0;       // index of the selected row (up/down)
  int selected_tid = -1;  // its thread: the selection follows it when rows are re-sorted
  bool help = false;
  bool split = false;   // the selected vCPU's full delay split (key b)
  std::string message;  // one-line feedback (a bad delay...), shown until the next key

  // Moves the selection by `by` rows.
  void move_selection(int by) {
    selected += by;
    selected_tid = -1;  // the row now at that index, whatever thread it is
  }

  void draw_lines(const std::vector<std::string>& lines) {
    for (int row = 0; row < static_cast<int>(lines.size()) && row < LINES - 1; ++row) {
      put_line(row, lines[static_cast<std::size_t>(row)]);
    }
    put_line(LINES - 1, "press any key to return", A_BOLD);
    refresh();
  }

  void draw() {
    erase();
    if (help) return draw_lines(top_help_lines());
    const auto rows = top_rows(*sample, settings);
    if (selected_tid >= 0) {
      const auto at = std::find_if(rows.begin(), rows.end(), [&](const TopRow& row) {
        return sample->snapshot.vms[row.vm].threads[row.thread].tid == selected_tid;
      });
      if (at != rows.end()) selected = static_cast<int>(at - rows.begin());
    }
    selected = std::clamp(selected, 0, std::max(0, static_cast<int>(rows.size()) - 1));
    if (!rows.empty()) {
      const auto& chosen = rows[static_cast<std::size_t>(selected)];
      selected_tid = sample->snapshot.vms[chosen.vm].threads[chosen.thread].tid;
    }
    if (split) {
      if (rows.empty()) return draw_lines({"no row is selected"});
      return draw_lines(top_split_lines(*sample, rows[static_cast<std::size_t>(selected)], waits));
    }
    int row = 0;
    put_line(row++, top_summary(*sample), A_BOLD);
    // The CPU cells take at most a third of the screen; past that, two characters a CPU.
    const int cell_rows = std::max(2, (LINES - 2) / 3);
    const bool compact = !cpu_cells_fit(*sample, COLS, cell_rows);
    auto cells = cpu_cell_lines(*sample, COLS, compact);
    if (static_cast<int>(cells.size()) > cell_rows) {
      cells.resize(static_cast<std::size_t>(cell_rows));
      cells.back() = "... (more CPUs: enlarge the window)";
    }
    for (const auto& line : cells) put_line(row++, line);
    std::string header = top_table_header();
    header.resize(static_cast<std::size_t>(std::max(COLS, 0)), ' ');
    put_line(row++, header, A_REVERSE);
    const int room = std::max(0, LINES - row - 1);
    // Scrolled so that the selected row is in sight.
    scroll = std::clamp(scroll, std::max(0, selected - room + 1), selected);
    scroll = std::clamp(scroll, 0, std::max(0, static_cast<int>(rows.size()) - room));
    for (int k = scroll; k < static_cast<int>(rows.size()) && row < LINES - 1; ++k) {
      const auto& top_row = rows[static_cast<std::size_t>(k)];
      const bool moved = sample->rates[top_row.vm][top_row.thread].cpu_changed;
      put_line(row++, top_row_text(*sample, top_row, waits),
               (moved ? A_BOLD : A_NORMAL) | (top_row.flags != 0 ? A_UNDERLINE : A_NORMAL) |
                   (k == selected ? A_STANDOUT : A_NORMAL));
    }
    if (rows.empty())
      put_line(row, settings.filter.empty() ? "no VMs" : "no VM matches the filter");
    const char* sorts[] = {"N", "P", "D", "M"};
    auto status =
        message.empty()
            ? fmt::format(
                  "h help  q quit  b behind  e emulator:{}  sort:{}  delay:{:g}s  filter:{}"
                  "  rows {}-{}/{}",
                  settings.show_emulator ? "on" : "off", sorts[static_cast<int>(settings.sort)],
                  settings.delay_s, settings.filter.empty() ? "-" : settings.filter,
                  rows.empty() ? 0 : scroll + 1,
                  std::min<int>(scroll + room, static_cast<int>(rows.size())), rows.size())
            : message;
    put_line(LINES - 1, status, A_REVERSE);
    refresh();
  }
};

}  // namespace

Status run_top_screen(Sampler& sampler, TopSettings& settings, int iterations,
                      const std::function<TopWaits(const Sample&)>& waits_for) {
  Screen screen;
  View view{nullptr, nullptr, settings, 0, 0, -1, false, false, {}};
  // The first screen comes quickly, from a short interval; later ones every delay.
  const auto period = [&] {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(settings.delay_s));
  };
  Ticker ticker(period(), Clock::now() + std::chrono::milliseconds(300) - period());
  int refreshes = 0;
  bool quit = false;
  while (!quit) {
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(ticker.next() - Clock::now());
    timeout(static_cast<int>(std::max<long long>(0, wait.count())));
    const int key = getch();
    if (key == ERR) {
      auto sample = sampler.sample();
      if (!sample) return sample.error();
      view.sample = *sample;
      view.waits = waits_for(**sample);
      // The next screen one delay after this one, as top does: no burst after a slow sample.
      ticker.tick_at(Clock::now() + period());
      view.draw();
      if (iterations > 0 && ++refreshes >= iterations) break;
      continue;
    }
    view.message.clear();
    if (view.help || view.split) {
      view.help = view.help && key == KEY_RESIZE;
      view.split = view.split && key == KEY_RESIZE;
    } else {
      switch (key) {
        case 'q':
          quit = true;
          break;
        case ' ':
          ticker.tick_at(Clock::now());
          break;
        case 'h':
        case '?':
          view.help = true;
          break;
        case 'b':
        case '\n':
        case KEY_ENTER:
          view.split = true;
          break;
        case 'e':
          settings.show_emulator = !settings.show_emulator;
          break;
        case 'P':
          settings.sort = TopSort::cpu_pct;
          break;
        case 'D':
          settings.sort = TopSort::delay;
          break;
        case 'M':
          settings.sort = TopSort::migrations;
          break;
        case 'N':
          settings.sort = TopSort::name;
          break;
        case 'f':
          settings.filter = prompt("filter by VM name or pid (empty: all): ");
          view.scroll = 0;
          view.move_selection(-view.selected);
          break;
        case 'd': {
          const auto text = prompt(fmt::format("delay in seconds [{:g}]: ", settings.delay_s));
          if (text.empty()) break;
          const auto parsed = parse_duration(text);
          const double delay = parsed ? std::chrono::duration<double>(*parsed).count() : 0;
          if (!parsed || delay < 0.1 || delay > 86400) {
            view.message = fmt::format(
                "'{}' is not a delay: give seconds from 0.1, e.g. 1.5 or 500ms", printable(text));
          } else {
            settings.delay_s = delay;
            ticker.set_period(period(), Clock::now());
          }
          break;
        }
        case KEY_UP:
          view.move_selection(-1);
          break;
        case KEY_DOWN:
          view.move_selection(1);
          break;
        case KEY_PPAGE:
          view.move_selection(-std::max(1, LINES / 2));
          break;
        case KEY_NPAGE:
          view.move_selection(std::max(1, LINES / 2));
          break;
        case KEY_RESIZE:
        default:
          break;
      }
    }
    if (!quit && view.sample != nullptr) view.draw();
  }
  return Ok{};
}

}  // namespace vcpumap::views
