#!/usr/bin/env bash
# The man pages: one per subcommand `vcpumap --help` lists, plus vcpumap(1); every option that a
# subcommand's --help prints appears in its page (the global ones in vcpumap(1)), and
# `man --warnings` finds nothing to say about any page.
# Usage: bash tests/packaging/test_man.sh PATH/TO/vcpumap MAN_DIR (the built roff pages)
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/help_options.sh"
MAN_DIR=${2:?usage: test_man.sh VCPUMAP MAN_DIR}
command -v man >/dev/null || skip "man is not installed (Debian package man-db)"

# page_text PAGE: the page as `man` shows it, as plain text.
page_text() { MANWIDTH=100 man -P cat -l "$1" 2>/dev/null | col -b; }

# check_page PAGE_NAME SUBCOMMAND: the page exists, is clean, names every option of --help.
check_page() {
  local name=$1 sub=$2 page="$MAN_DIR/$1.1" text option missing=()
  CHECKS=$((CHECKS + 1))
  if [[ ! -f "$page" ]]; then
    fail "$name(1) exists" "no $page: add docs/man/$name.1.scd and list it in docs/man/CMakeLists.txt"
    return
  fi
  text=$(page_text "$page")
  while read -r option; do
    [[ -n $sub && ($option == -h || $option == --help) ]] && continue
    # The option as a word of its own: --delay must not be found inside --delay-max.
    grep -qE -- "(^|[^-[:alnum:]_.])${option//./\\.}([^-[:alnum:]_.]|$)" <<<"$text" ||
      missing+=("$option")
  done < <(help_options "$VCPUMAP" $sub)
  CHECKS=$((CHECKS + 1))
  for option in "${missing[@]}"; do
    fail "$name(1) lacks $option, which \`vcpumap${sub:+ $sub} --help\` prints: document it in docs/man/$name.1.scd"
  done
  local warnings
  warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  assert_eq "man --warnings $name.1 is clean" "" "$warnings"
}

check_page vcpumap ""
while read -r sub; do check_page "vcpumap-$sub" "$sub"; done < <(subcommands "$VCPUMAP")
say "$CHECKS checks over $(ls "$MAN_DIR"/*.1 | wc -l) pages"
