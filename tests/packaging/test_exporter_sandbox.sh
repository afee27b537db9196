#!/usr/bin/env bash
# The exporter under its systemd unit's restrictions, and the unit itself: `systemd-analyze
# verify` accepts it, `systemd-analyze security --offline=yes` scores it at most 4.0, and
# `vcpumap serve --source bpf` run with the unit's capability bounding set (and nothing else),
# NoNewPrivileges, its system call filter (seccomp, tests/packaging/seccomp_exec.py), a read-only
# file system and private /tmp, /var/tmp and /home, answers a scrape with a fake guest's vCPUs.
# systemd is not PID 1 here, so setpriv, unshare and seccomp stand in for it, reading the unit.
# Usage: bash tests/packaging/test_exporter_sandbox.sh PATH/TO/vcpumap UNIT [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
UNIT=${2:?usage: test_exporter_sandbox.sh VCPUMAP UNIT [FAKE_GUEST]}
[[ $(id -u) -eq 0 ]] || skip "needs root (capabilities, mount namespace)"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (Debian package systemd)"
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || skip "python3-seccomp is not installed"
find_fake_guest "${3:-}"
VCPUMAP_ABS=$(readlink -f "$VCPUMAP")

# --- the unit ------------------------------------------------------------------------------------

# verify needs ExecStart's binary to exist: a copy of the unit that runs the one under test.
sed "s|^ExecStart=[^ ]*|ExecStart=$VCPUMAP_ABS|" "$UNIT" >"$TEST_TMP/vcpumap-exporter.service"
verify=$(systemd-analyze verify --man=no "$TEST_TMP/vcpumap-exporter.service" 2>&1)
assert_eq "systemd-analyze verify accepts the unit" "0:" "$?:$verify"
score=$(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null |
  sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
CHECKS=$((CHECKS + 1))
if [[ -z $score ]] || ! awk -v s="$score" 'BEGIN { exit !(s <= 4.0) }'; then
  fail "systemd-analyze security: exposure at most 4.0" "got: '${score}'"
fi
say "exposure $score (README.md gives it)"
grep -q "exposure.*$score" "$SOURCE_DIR/README.md" ||
  fail "README.md gives the exposure score $score" "update README.md"
CHECKS=$((CHECKS + 1))

# The capabilities, as setpriv spells them: CAP_BPF CAP_PERFMON -> -all,+bpf,+perfmon.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT")
[[ -n $caps ]] || fatal "the unit has no CapabilityBoundingSet="
bounding="-all"
for cap in $caps; do bounding+=",+$(tr '[:upper:]' '[:lower:]' <<<"${cap#CAP_}")"; done
assert_eq "the unit sets NoNewPrivileges=yes" "yes" "$(sed -n 's/^NoNewPrivileges=//p' "$UNIT")"
assert_eq "the unit sets ProtectSystem=strict" "strict" "$(sed -n 's/^ProtectSystem=//p' "$UNIT")"

# --- the exporter under those restrictions ----------------------------------------------------------

VM_NAME="itest-sandbox-$$"
start_fake sandbox -name "guest=$VM_NAME,debug-threads=on" --threads 2

# ProtectSystem=strict, ProtectHome, PrivateTmp: every mount read-only but the API file systems,
# empty tmpfs over /tmp, /var/tmp, /home and /root. Then the capabilities, then the filter.
cat >"$TEST_TMP/sandbox.sh" <<'EOF'
set -e
awk '{ print $2 }' /proc/self/mounts | sort -u | while read -r mount; do
  case $mount in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
  mount -o remount,bind,ro "$mount" 2>/dev/null || true
done
for dir in /tmp /var/tmp /home /root; do [ -d "$dir" ] && mount -t tmpfs -o mode=0755 tmpfs "$dir"; done
exec "$@"
EOF
LOG="$TEST_TMP/sandboxed.log"
export UNIT_SYSCALL_FILTER
UNIT_SYSCALL_FILTER=$(grep '^SystemCallFilter=' "$UNIT")
[[ -n $UNIT_SYSCALL_FILTER ]] || fatal "the unit has no SystemCallFilter="
start_background unshare --mount --propagation private -- bash "$TEST_TMP/sandbox.sh" \
  setpriv --bounding-set "$bounding" --inh-caps -all --ambient-caps -all --no-new-privs -- \
  /usr/bin/python3 "$SOURCE_DIR/tests/packaging/seccomp_exec.py" "$VCPUMAP_ABS" --no-libvirt --source bpf serve --listen 127.0.0.1:0 2>"$LOG"
UNSHARE_PID=$BG_PID
for ((i = 0; i < 200; i++)); do grep -q 'listening on' "$LOG" && break; sleep 0.05; done
EXPORTER=$(grep -o 'http://127.0.0.1:[0-9]*' "$LOG" | head -n1)
[[ -n $EXPORTER ]] || fatal "the sandboxed exporter did not start: $(cat "$LOG")"
# unshare, bash, setpriv and python each exec the next: the exporter has unshare's PID.
EXPORTER_PID=$UNSHARE_PID
[[ $(readlink "/proc/$EXPORTER_PID/exe") == "$VCPUMAP_ABS" ]] ||
  fatal "PID $EXPORTER_PID is not the exporter: $(readlink "/proc/$EXPORTER_PID/exe")"
say "sandboxed exporter pid $EXPORTER_PID at $EXPORTER"

status_field() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$EXPORTER_PID/status"; }
expected_caps=$(/usr/bin/python3 -c '
import sys
bits = {"CAP_BPF": 39, "CAP_PERFMON": 38, "CAP_SYS_PTRACE": 19, "CAP_DAC_READ_SEARCH": 2,
        "CAP_DAC_OVERRIDE": 1, "CAP_SYS_RESOURCE": 24, "CAP_SYS_ADMIN": 21}
print("%016x" % sum(1 << bits[c] for c in sys.argv[1:]))' $caps)
assert_eq "exporter: its effective capabilities are the unit's ($caps)" "$expected_caps" "$(status_field CapEff)"
assert_eq "exporter: its bounding set is the unit's" "$expected_caps" "$(status_field CapBnd)"
assert_eq "exporter: no new privileges" "1" "$(status_field NoNewPrivs)"
assert_eq "exporter: a seccomp filter (mode 2)" "2" "$(status_field Seccomp)"
assert_match "exporter: / is read-only to it" \
  "$(awk '$5 == "/" { print $6 }' "/proc/$EXPORTER_PID/mountinfo")" '^ro'

/usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
  "$EXPORTER/metrics" >"$TEST_TMP/metrics.txt" 2>&1
assert_eq "scrape: the fake guest's 2 vCPUs (bpf source, sandboxed)" "2" \
  "$(grep -c "^vcpumap_vcpu_cpu_seconds_total{vm=\"$VM_NAME\"" "$TEST_TMP/metrics.txt")"
assert_eq "scrape: the snapshot succeeded" "1" \
  "$(awk '$1 == "vcpumap_scrape_success" { print $2 }' "$TEST_TMP/metrics.txt")"
assert_not_contains "exporter: nothing denied on stderr" "$(cat "$LOG")" "Operation not permitted"

kill -TERM "$EXPORTER_PID"
wait "$UNSHARE_PID"
assert_eq "sandboxed exporter: exits 0 on SIGTERM" "0" "$?"
