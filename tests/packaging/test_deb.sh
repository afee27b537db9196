#!/usr/bin/env bash
# `make deb`: the Debian package in dist/ (built once: again only when a packaged source is newer),
# lintian finds no error and no warning, and on this machine `dpkg -i` installs it (man
# vcpumap-top, completion, the exporter unit installed but not enabled, /etc/default's conffile),
# `dpkg -r` removes all but the conffile and `dpkg --purge` leaves nothing. The machine is shared:
# the test holds a lock, skips when a vcpumap package is installed already, and purges what it
# installed whatever happens.
# Usage: bash tests/packaging/test_deb.sh PATH/TO/vcpumap
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
[[ $(id -u) -eq 0 ]] || skip "needs root (dpkg -i)"
command -v dpkg-buildpackage >/dev/null || skip "dpkg-dev is not installed"
command -v lintian >/dev/null || skip "lintian is not installed (Debian package lintian)"
exec 9>/run/lock/vcpumap-test-deb.lock
flock -w 600 9 || fatal "another test_deb.sh holds /run/lock/vcpumap-test-deb.lock"
dpkg-query -W -f='${Status}' vcpumap 2>/dev/null | grep -q installed &&
  skip "a vcpumap package is installed on this machine already: not touching it"

cd "$SOURCE_DIR" || fatal "no $SOURCE_DIR"
deb=$(ls -t dist/vcpumap_*.deb 2>/dev/null | head -n1)
if [[ -z $deb || -n $(find CMakeLists.txt src docs contrib debian -newer "$deb" -type f \
  -not -path 'debian/vcpumap/*' -not -path 'debian/.debhelper/*' -print -quit) ]]; then
  say "building the package (make deb)"
  make deb >"$TEST_TMP/deb.log" 2>&1 || fatal "make deb failed: $(tail -n 20 "$TEST_TMP/deb.log")"
  deb=$(ls -t dist/vcpumap_*.deb | head -n1)
fi
say "package $deb"

lintian --tag-display-limit 0 "$deb" >"$TEST_TMP/lintian.out" 2>&1
assert_eq "lintian: no errors, no warnings" "" "$(grep -E '^[EW]: ' "$TEST_TMP/lintian.out")"
[[ -s "$TEST_TMP/lintian.out" ]] && say "lintian: $(tr '\n' ';' <"$TEST_TMP/lintian.out")"
assert_contains "Depends computed from the shared libraries" \
  "$(dpkg-deb -f "$deb" Depends)" "libbpf1"

purge_on_exit() { dpkg-query -W vcpumap >/dev/null 2>&1 && dpkg --purge vcpumap >/dev/null 2>&1; }
trap 'status=$?; purge_on_exit; (exit $status); guests_on_exit' EXIT
mapfile -t files < <(dpkg-deb -c "$deb" | awk '{ print substr($6, 2) }' | grep -v '/$')

dpkg -i "$deb" >"$TEST_TMP/dpkg.log" 2>&1
assert_eq "dpkg -i installs it" "0:install ok installed" "$?:$(dpkg-query -W -f='${Status}' vcpumap)"
assert_eq "the installed vcpumap runs" "0" "$(/usr/bin/vcpumap --version >/dev/null; echo $?)"
assert_eq "man vcpumap-top finds its page" "/usr/share/man/man1/vcpumap-top.1.gz" "$(man -w vcpumap-top 2>&1)"
assert_true "bash completion installed" test -f /usr/share/bash-completion/completions/vcpumap
assert_true "zsh completion installed" test -f /usr/share/zsh/vendor-completions/_vcpumap
unit=/lib/systemd/system/vcpumap-exporter.service
assert_eq "systemd-analyze verify accepts the installed unit" "0:" \
  "$(systemd-analyze verify --man=no "$unit" 2>&1; echo "$?:")"
assert_true "the exporter is installed, not enabled (README.md says why)" \
  test ! -e /etc/systemd/system/multi-user.target.wants/vcpumap-exporter.service
assert_contains "/etc/default/vcpumap-exporter is a conffile" \
  "$(dpkg-query -W -f='${Conffiles}' vcpumap)" "/etc/default/vcpumap-exporter"

dpkg -r vcpumap >>"$TEST_TMP/dpkg.log" 2>&1
assert_eq "dpkg -r removes it, keeping its conffile" "0:deinstall ok config-files" \
  "$?:$(dpkg-query -W -f='${Status}' vcpumap 2>&1)"
left=()
for file in "${files[@]}"; do [[ -e $file && $file != /etc/* ]] && left+=("$file"); done
assert_eq "dpkg -r: no packaged file left but /etc's" "" "${left[*]}"
dpkg --purge vcpumap >>"$TEST_TMP/dpkg.log" 2>&1
assert_eq "dpkg --purge: the package is gone" "0:" \
  "$?:$(dpkg-query -W -f='${Status}' vcpumap 2>/dev/null | grep -v not-installed)"
left=()
for file in "${files[@]}"; do [[ -e $file ]] && left+=("$file"); done
assert_eq "dpkg --purge: nothing left" "" "${left[*]}"
assert_not_contains "dpkg printed no warning" "$(cat "$TEST_TMP/dpkg.log")" "warning"
