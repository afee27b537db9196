#!/usr/bin/env bash
# `make install`'s rules: `cmake --install` of the build tree into a DESTDIR puts the binary, every
# man page, both completions, the exporter's unit (running the installed binary) and the examples
# where Debian's tools look for them, nothing outside DESTDIR, and the installed man finds
# `vcpumap-top`.
# Usage: bash tests/packaging/test_install.sh PATH/TO/vcpumap BUILD_DIR
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/help_options.sh"
BUILD_DIR=${2:?usage: test_install.sh VCPUMAP BUILD_DIR}
DEST="$TEST_TMP/dest"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD_DIR/CMakeCache.txt")
unit_dir=$(sed -n 's/^VCPUMAP_SYSTEMD_UNIT_DIR:PATH=//p' "$BUILD_DIR/CMakeCache.txt")

DESTDIR="$DEST" cmake --install "$BUILD_DIR" >"$TEST_TMP/install.log" 2>&1
assert_eq "cmake --install with DESTDIR succeeds" "0" "$?"
CHECKS=$((CHECKS + 1))
outside=$(grep -- '-- Installing: ' "$TEST_TMP/install.log" | grep -v -- "-- Installing: $DEST/")
[[ -z $outside ]] || fail "nothing is installed outside DESTDIR" "$outside"

expect_file() {
  CHECKS=$((CHECKS + 1))
  [[ -f "$DEST$1" ]] || fail "installed: $1" "not in $DEST"
}
expect_file "$prefix/bin/vcpumap"
expect_file "$prefix/share/man/man1/vcpumap.1"
while read -r sub; do expect_file "$prefix/share/man/man1/vcpumap-$sub.1"; done < <(subcommands "$VCPUMAP")
expect_file "$prefix/share/bash-completion/completions/vcpumap"
expect_file "$prefix/share/zsh/vendor-completions/_vcpumap"
expect_file "$unit_dir/vcpumap-exporter.service"
for example in prometheus.yml vcpumap-rules.yml vcpumap-dashboard.json; do
  expect_file "$prefix/share/doc/vcpumap/examples/$example"
done
assert_eq "the unit runs the installed binary" "ExecStart=$prefix/bin/vcpumap serve \$VCPUMAP_EXPORTER_ARGS" \
  "$(grep '^ExecStart=' "$DEST$unit_dir/vcpumap-exporter.service")"
assert_contains "man finds vcpumap-top in the installed tree" \
  "$(MANPATH="$DEST$prefix/share/man" man -P cat vcpumap-top 2>&1 | col -b)" "vcpumap-top - live view"
assert_eq "the installed binary runs" "0" "$("$DEST$prefix/bin/vcpumap" --version >/dev/null; echo $?)"
