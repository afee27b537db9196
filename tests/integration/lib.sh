# shellcheck shell=bash
# Sourced by each tests/integration/test_*.sh script, run as `bash test_X.sh /path/to/vcpumap`.
#
# Gives: $VCPUMAP (the binary under test), $TEST_TMP (a per-test temp dir, removed on exit),
# the guest functions of scripts/guests.sh (start_guest, make_spin_disk, wait_vcpu_threads, ...:
# every process started through them is stopped by PID on EXIT/INT/TERM), assertion helpers that
# print what was expected and what came and make the script exit 1 at the end, `skip` (exit 77:
# ctest's SKIP_RETURN_CODE), and JSON helpers over python3.

set -uo pipefail

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SOURCE_DIR=$(cd "$TESTS_DIR/.." && pwd)
TEST_NAME=$(basename "$0" .sh)

# shellcheck source=../../scripts/guests.sh
source "$SOURCE_DIR/scripts/guests.sh"

FAILURES=0
CHECKS=0

say() { printf '%s: %s\n' "$TEST_NAME" "$*"; }

# skip REASON: the test can't run here; ctest shows it as skipped.
skip() {
  say "SKIP: $*"
  exit 77
}

# fatal MESSAGE: a failure the rest of the test can't go on after.
fatal() {
  say "FATAL: $*" >&2
  FAILURES=$((FAILURES + 1))
  exit 1
}

fail() {
  FAILURES=$((FAILURES + 1))
  printf '%s: FAIL: %s\n' "$TEST_NAME" "$1" >&2
  shift
  local line
  for line in "$@"; do printf '    %s\n' "$line" >&2; done
}

pass() {
  [[ -n "${VERBOSE:-}" ]] && say "ok: $*"
  return 0
}

# assert_eq WHAT EXPECTED GOT
assert_eq() {
  CHECKS=$((CHECKS + 1))
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "expected: $(quote "$2")" "got:      $(quote "$3")"; fi
}

# assert_in WHAT GOT ALLOWED... : GOT must be one of ALLOWED.
assert_in() {
  local what=$1 got=$2 allowed
  shift 2
  CHECKS=$((CHECKS + 1))
  for allowed in "$@"; do [[ "$got" == "$allowed" ]] && { pass "$what"; return 0; }; done
  fail "$what" "expected one of: $*" "got:      $(quote "$got")"
}

# assert_contains WHAT HAYSTACK NEEDLE
assert_contains() {
  CHECKS=$((CHECKS + 1))
  if [[ "$2" == *"$3"* ]]; then
    pass "$1"
  else
    fail "$1" "expected to contain: $(quote "$3")" "in: $(quote "$2")"
  fi
}

assert_not_contains() {
  CHECKS=$((CHECKS + 1))
  if [[ "$2" != *"$3"* ]]; then
    pass "$1"
  else
    fail "$1" "expected NOT to contain: $(quote "$3")" "in: $(quote "$2")"
  fi
}

# assert_match WHAT STRING REGEX (bash ERE)
assert_match() {
  CHECKS=$((CHECKS + 1))
  if [[ "$2" =~ $3 ]]; then pass "$1"; else fail "$1" "expected to match: $3" "got: $(quote "$2")"; fi
}

# assert_true WHAT CMD...: the command must succeed.
assert_true() {
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then pass "$what"; else fail "$what" "command failed: $*"; fi
}

# quote STRING: a one-line, visible form of STRING (newlines and odd bytes escaped).
quote() { printf '%q' "$1"; }

# run_vcpumap ARGS...: runs $VCPUMAP; sets OUT (stdout, trailing newlines cut), OUT_FILE (the
# exact stdout), ERR (stderr) and STATUS.
# shellcheck disable=SC2034  # OUT, ERR, STATUS are for the test scripts
run_vcpumap() {
  OUT_FILE="$TEST_TMP/stdout"
  local err_file="$TEST_TMP/stderr"
  "$VCPUMAP" "$@" >"$OUT_FILE" 2>"$err_file"
  STATUS=$?
  OUT=$(<"$OUT_FILE")
  ERR=$(<"$err_file")
  [[ -n "${VERBOSE:-}" ]] && say "vcpumap $* -> status $STATUS"
  return 0
}

# expect_vcpumap ARGS...: runs $VCPUMAP and records a failure unless it exits 0.
expect_vcpumap() {
  run_vcpumap "$@"
  CHECKS=$((CHECKS + 1))
  if ((STATUS != 0)); then
    fail "vcpumap $* exits 0" "exit status $STATUS" "stderr: $ERR"
    return 1
  fi
}

# start_exporter LOG ARGS...: starts `vcpumap --no-libvirt serve` on a free loopback port and
# waits (bounded) until it listens; sets EXPORTER_PID and EXPORTER (its http(s)://ADDR:PORT).
start_exporter() {
  local log=$1 i
  shift
  start_background "$VCPUMAP" --no-libvirt serve --listen 127.0.0.1:0 "$@" 2>"$log"
  EXPORTER_PID=$BG_PID
  for ((i = 0; i < 100; i++)); do grep -q 'listening on' "$log" && break; sleep 0.05; done
  EXPORTER=$(grep -o 'https\?://127.0.0.1:[0-9]*' "$log" | head -n1)
  [[ -n "$EXPORTER" ]] || fatal "vcpumap serve did not start: $(cat "$log")"
}

# make_web_config DIR: a self-signed certificate for 127.0.0.1 (DIR/tls.crt, DIR/tls.key, P-256:
# quick handshakes) and DIR/web.yml, a --web.config.file with TLS and the user prom:s3cret.
make_web_config() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$1/tls.key" \
    -out "$1/tls.crt" >/dev/null 2>&1 || fatal "openssl can't make a test certificate"
  # bcrypt of "s3cret" (cost 5, as `htpasswd -nbBC 5` makes it).
  cat >"$1/web.yml" <<'EOF'
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
basic_auth_users:
  prom: $2b$05$0123456789abcdefghijkezSBOoG.jxfxmrXDMAIWDGKKClaxaYOO
EOF
}

# json_valid TEXT: TEXT parses as one JSON document.
json_valid() { python3 -c 'import json,sys; json.loads(sys.stdin.buffer.read())' <<<"$1" 2>/dev/null; }

# json_eval JSON PY_EXPR: evaluates PY_EXPR with `d` bound to the parsed JSON (and json, sys
# imported) and prints the result: lists joined by ',', None as 'null', booleans as
# true/false, anything else with str(). Prints nothing and fails when the expression raises.
# The JSON goes through stdin: as an argument, a host with many VMs passes the kernel's 128 KiB
# limit on one argument (E2BIG, "Argument list too long").
json_eval() {
  python3 -c '
import json, sys
d = json.loads(sys.stdin.buffer.read())
def show(v):
    if v is None: return "null"
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (list, tuple)): return ",".join(show(x) for x in v)
    return str(v)
try:
    print(show(eval(sys.argv[1])))
except Exception as e:
    print(f"json_eval: {sys.argv[1]}: {e!r}", file=sys.stderr)
    sys.exit(1)
' "$2" <<<"$1"
}

# The helpers of a JSON document from `vcpumap list --json`: one VM by pid.
# vm_eval LIST_JSON PID PY_EXPR: like json_eval with `v` bound to the VM with that pid.
vm_eval() {
  json_eval "$1" "(lambda v: $3)(next(x for x in d['vms'] if x['pid'] == $2))"
}

# cpu_list_of TID: the affinity of a thread as a comma-separated list of CPUs ("0,1").
cpu_list_of() {
  local list
  list=$(taskset -pc "$1" 2>/dev/null) || return 1
  list=${list##*: }
  python3 -c '
import sys
out = []
for part in sys.argv[1].split(","):
    if "-" in part:
        a, b = part.split("-"); out.extend(range(int(a), int(b) + 1))
    elif part:
        out.append(int(part))
print(",".join(map(str, out)))' "$list"
}

# ps_psr PID TID: the CPU `ps -L` says thread TID of PID last ran on.
# find_fake_guest [PATH]: sets FAKE_GUEST to PATH, $FAKE_GUEST (ctest sets it), or the one next
# to vcpumap in the build tree; skips the test when there is none.
find_fake_guest() {
  FAKE_GUEST=${1:-${FAKE_GUEST:-$(dirname "$VCPUMAP")/../../tests/fake_guest}}
  [[ -x "$FAKE_GUEST" ]] || skip "no fake_guest at $FAKE_GUEST (build the fake_guest target)"
}

# start_fake LABEL ARGS...: starts fake_guest as qemu-system-x86_64; waits (bounded) for the pid
# it prints once its threads are named; sets FAKE_PID.
start_fake() {
  local label=$1
  shift
  local out="$TEST_TMP/$label.out" i
  start_background_as qemu-system-x86_64 "$FAKE_GUEST" "$@" >"$out"
  for ((i = 0; i < 200; i++)); do
    [[ -s "$out" ]] && break
    sleep 0.05
  done
  FAKE_PID=$(head -n1 "$out")
  [[ "$FAKE_PID" == "$BG_PID" ]] || fatal "fake_guest $label: printed '$FAKE_PID', started $BG_PID"
}

# wait_screen TEXT [SECONDS]: until the test's `screen` (its tmux pane, as text) shows TEXT;
# bounded (5 s unless told).
wait_screen() {
  local i
  for ((i = 0; i < ${2:-5} * 10; i++)); do
    [[ "$(screen)" == *"$1"* ]] && return 0
    sleep 0.1
  done
  return 1
}

ps_psr() { ps -L -o tid=,psr= -p "$1" | awk -v t="$2" '$1 == t { print $2 }'; }

# The verdict: called from the EXIT trap. Recorded failures make the exit status 1.
guests_exit_hook() {
  local status=$1
  if ((status == 77)); then return; fi
  if ((FAILURES > 0)); then
    say "$FAILURES of $CHECKS checks FAILED"
    exit 1
  fi
  if ((status == 0)); then say "all $CHECKS checks passed"; fi
}

# --- set up ---------------------------------------------------------------------------------

VCPUMAP=${1:-}
[[ -n "$VCPUMAP" ]] || { echo "usage: bash $0 PATH/TO/vcpumap" >&2; exit 2; }
[[ -x "$VCPUMAP" ]] || { echo "$0: $VCPUMAP is not an executable" >&2; exit 2; }
VCPUMAP=$(cd "$(dirname "$VCPUMAP")" && pwd)/$(basename "$VCPUMAP")

command -v python3 >/dev/null || skip "python3 is not installed (needed to read JSON)"

guests_init || fatal "can't make a temp dir"
export TEST_TMP=$GUESTS_TMP

# libvirt_domains_setup DOMAINS_DIR NAME...: starts libvirt if none answers
# (scripts/libvirt-env.sh), defines the domains NAME from DOMAINS_DIR/NAME.xml (refusing to touch
# a domain of that name that already exists), and on exit destroys and undefines exactly those,
# then stops only what libvirt-env.sh started. Sets VIRSH and OURS.
libvirt_domains_setup() {
  local dir=$1 name
  shift
  ENV_SCRIPT="$SOURCE_DIR/scripts/libvirt-env.sh"
  export LIBVIRT_DEFAULT_URI=qemu:///system
  VIRSH=(virsh -c qemu:///system)
  OURS=("$@")
  # The domains first, then what guests.sh's own EXIT trap does (stop every process started here
  # by PID, remove the temp dir, the verdict), with the script's exit status kept.
  trap 'status=$?; libvirt_domains_cleanup; (exit $status); guests_on_exit' EXIT
  bash "$ENV_SCRIPT" start || fatal "libvirt did not start"
  for name in "${OURS[@]}"; do
    "${VIRSH[@]}" domstate "$name" >/dev/null 2>&1 && fatal "a domain named $name already exists; not touching it"
    "${VIRSH[@]}" define "$dir/$name.xml" >/dev/null || fatal "cannot define $name"
  done
}

libvirt_domains_cleanup() {
  local name
  for name in "${OURS[@]}"; do
    "${VIRSH[@]}" destroy "$name" >/dev/null 2>&1
    "${VIRSH[@]}" undefine "$name" >/dev/null 2>&1
  done
  bash "$ENV_SCRIPT" stop >/dev/null
}

# free_port: a TCP port nobody listens on now (the kernel picks it).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_prometheus RULES_FILE: a real Prometheus on a free loopback port, scraping $EXPORTER every
# second and evaluating RULES_FILE, its data in $TEST_TMP; sets PROM (its URL) and PROM_PID (it is
# stopped by PID when the test ends, as everything start_background starts).
start_prometheus() {
  PROM_PORT=$(free_port)
  PROM="http://127.0.0.1:$PROM_PORT"
  cat >"$TEST_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $1
scrape_configs:
  - job_name: vcpumap
    static_configs:
      - targets: ['${EXPORTER#http://}']
EOF
  start_background prometheus --config.file="$TEST_TMP/prometheus.yml" \
    --storage.tsdb.path="$TEST_TMP/tsdb" --web.listen-address="127.0.0.1:$PROM_PORT" \
    >"$TEST_TMP/prometheus.log" 2>&1
  PROM_PID=$BG_PID
}
