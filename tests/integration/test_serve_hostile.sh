#!/usr/bin/env bash
# `vcpumap serve` under hostile clients, on loopback, against look-alike guests (fake_guest):
# 1,000 clients that send half a request and hang plus 200 that say nothing, held open while 10
# real scrapes must each answer 200 within max(1 s, 5x the unloaded latency); 2,000 malformed
# requests that must crash nothing and get 4xx; the per-address and global connection caps; the
# idle timeout; the vm collector alone; the same hold on a TLS + basic auth listener with clients
# stalled mid-handshake; client certificates; peak RSS (VmHWM) at most 64 MiB throughout; a clean
# SIGTERM with all of it still connected.
# The clients are tests/tools/http_load.py (python3 asyncio).
# Usage: bash tests/integration/test_serve_hostile.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
# Set VCPUMAP_BENCH_OUT=FILE to append the figures (BENCHMARKS.md table rows).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FAKE_GUEST=${2:-${FAKE_GUEST:-$(dirname "$VCPUMAP")/../../tests/fake_guest}}
[[ -x "$FAKE_GUEST" ]] || skip "no fake_guest at $FAKE_GUEST (build the fake_guest target)"
LOAD=(python3 "$SOURCE_DIR/tests/tools/http_load.py")
# The clients hold 1,400 descriptors, the exporter as many: raise the limit both inherit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
(($(ulimit -n) >= 4096)) || skip "ulimit -n is $(ulimit -n) (hard limit); this test needs 4096"

# Bounds are a user's in a normal build; under ASan+UBSan (-O0, shadow memory) they widen.
RSS_LIMIT_KIB=$((64 * 1024))
SLOWER=1
if [[ -n "${VCPUMAP_SANITIZED:-}" ]]; then
  RSS_LIMIT_KIB=$((2048 * 1024))  # shadow memory and the 256 MiB quarantine
  SLOWER=4
  say "under ASan+UBSan: RSS bound 2 GiB, time bounds x$SLOWER"
fi

# json FILE EXPR: EXPR over the JSON document in FILE (as `d`).
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# check_hold FILE WHAT: the checks on one `http_load.py hold` result.
check_hold() {
  local file=$1 what=$2
  assert_eq "$what: all $3 hostile clients connected and held open through the scrapes" \
    "$3 $3 0" "$(json "$file" '"%d %d %d" % (d["held"], d["still_open"], d["open_failures"])')"
  assert_eq "$what: each of 10 scrapes answers 200 with the metrics" "10" \
    "$(json "$file" 'sum(1 for s in d["loaded"] if s["status"] == 200 and s.get("ok"))')"
  local slowest bound
  slowest=$(json "$file" 'max(s["seconds"] for s in d["loaded"])')
  bound=$(json "$file" "d['bound'] * $SLOWER")
  assert_eq "$what: the slowest scrape (${slowest}s) within max(1 s, 5x unloaded) = ${bound}s" \
    "True" "$(python3 -c "print($slowest <= $bound)")"
}

# check_stop FILE WHAT N: the hold ended with SIGTERM to the exporter, N clients still connected:
# it closed them all within 6 s and exited 0.
check_stop() {
  wait "$EXPORTER_PID"
  assert_eq "$2: SIGTERM with $3 clients connected: exit 0" "0" "$?"
  assert_eq "$2: ... every connection closed within 6 s" "$3 True" \
    "$(json "$1" '"%d %s" % (d["stop"]["closed"], d["stop"]["seconds"] <= 6)')"
}

# check_rss WHAT [FILE]: the exporter's peak RSS (VmHWM), read now or, from FILE, as the client
# read it before it stopped the exporter.
check_rss() {
  local hwm
  if [[ -n "${2:-}" ]]; then
    hwm=$(json "$2" 'd["peak_rss_kib"]')
  else
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$EXPORTER_PID/status")
  fi
  CHECKS=$((CHECKS + 1))
  ((hwm <= RSS_LIMIT_KIB)) || fail "$1: peak RSS at most $((RSS_LIMIT_KIB / 1024)) MiB" \
    "VmHWM ${hwm} kB"
  PEAK_RSS_KIB=$hwm
}

# figures FILE: "unloaded max, loaded median and max" in ms, for the BENCHMARKS.md row.
figures() {
  json "$1" '"%.1f ms | %.1f ms | %.1f ms" % (d["unloaded_max"] * 1e3, sorted(s["seconds"] for s in d["loaded"])[5] * 1e3, max(s["seconds"] for s in d["loaded"]) * 1e3)'
}

# --- look-alike guests: 16 x 4 vCPUs -----------------------------------------------------------

start_background_as fake-guests "$FAKE_GUEST" --guests 16 --threads 4 >"$TEST_TMP/guests.out"
for ((i = 0; i < 200; i++)); do (($(wc -l <"$TEST_TMP/guests.out") >= 16)) && break; sleep 0.05; done
(($(wc -l <"$TEST_TMP/guests.out") >= 16)) || fatal "fake_guest --guests 16 did not start"

# --- 1,000 half requests + 200 silent connections, plain HTTP -----------------------------------

# --cache 0: every scrape takes a real snapshot of the 16 guests, none is a cached copy.
# --request-timeout 120 s (x4 under ASan): no hostile client is timed out while the test runs, so
# what keeps the scrapes going is the event loops, not the timeout (tested on its own below).
start_exporter "$TEST_TMP/exporter.log" --cache 0 --request-timeout $((120 * SLOWER))
say "exporter pid $EXPORTER_PID at $EXPORTER"
"${LOAD[@]}" hold "$EXPORTER" --half 1000 --silent 200 --pid "$EXPORTER_PID" \
  --term "$EXPORTER_PID" --timeout $((30 * SLOWER)) >"$TEST_TMP/hold.json" ||
  fatal "http_load.py hold failed"
check_hold "$TEST_TMP/hold.json" "HTTP, 1,000 half requests + 200 silent" 1200
check_rss "HTTP hold" "$TEST_TMP/hold.json"
check_stop "$TEST_TMP/hold.json" "HTTP" 1200
HOLD_FIGURES=$(figures "$TEST_TMP/hold.json")
say "hold: unloaded max | loaded median | loaded max: $HOLD_FIGURES; peak RSS $((PEAK_RSS_KIB / 1024)) MiB"

# --- 2,000 malformed requests -----------------------------------------------------------------------

# Its own exporter, with a 3 s timeout: about 1 in 4,000 random inputs could still be the start of
# a request to libmicrohttpd, which then waits for more, as for any slow client, until the
# timeout closes it. The client waits 15 s for an answer or a close.
start_exporter "$TEST_TMP/exporter-flood.log" --cache 0 --request-timeout 3
"${LOAD[@]}" flood "$EXPORTER" --count 2000 --pid "$EXPORTER_PID" --timeout $((15 * SLOWER)) \
  >"$TEST_TMP/flood.json" || fatal "http_load.py flood failed"
assert_eq "flood: the exporter is still running" "0" "$(kill -0 "$EXPORTER_PID"; echo $?)"
assert_eq "flood: random bytes get 4xx, or are closed (no answer, or a reset)" "{}" \
  "$(json "$TEST_TMP/flood.json" '{k: v for k, v in d["results"]["random"].items() if not (k.startswith("4") or k in ("closed", "error:ConnectionResetError"))}')"
assert_eq "flood: a 70 KB request line gets 414" "{'414': 400}" \
  "$(json "$TEST_TMP/flood.json" 'd["results"]["long-line"]')"
assert_eq "flood: 5,000 headers get 431" "{'431': 400}" \
  "$(json "$TEST_TMP/flood.json" 'd["results"]["headers"]')"
assert_eq "flood: a POST announcing 100 MB gets 405, its body unread" "{'405': 400}" \
  "$(json "$TEST_TMP/flood.json" 'd["results"]["post"]')"
assert_eq "flood: path traversal gets 404 and no file" "{'404': 400} []" \
  "$(json "$TEST_TMP/flood.json" 'str(d["results"]["traversal"]) + " " + str(d["leaked"])')"
assert_eq "flood: the scrape after it answers 200" "200" \
  "$(json "$TEST_TMP/flood.json" 'd["after"]["status"]')"
after=$(json "$TEST_TMP/flood.json" 'd["after"]["seconds"]')
bound=$(json "$TEST_TMP/hold.json" "d['bound'] * $SLOWER")
assert_eq "flood: ... at once (${after}s, within ${bound}s)" "True" "$(python3 -c "print($after <= $bound)")"
check_rss "flood"
FLOOD_SECONDS=$(json "$TEST_TMP/flood.json" '"%.1f" % d["seconds"]')
say "flood: 2,000 requests in ${FLOOD_SECONDS}s, then a scrape in ${after}s"

# --- the caps and the idle timeout ----------------------------------------------------------------

kill -TERM "$EXPORTER_PID"
wait "$EXPORTER_PID"
assert_eq "exporter: exits 0 on SIGTERM after the flood" "0" "$?"

start_exporter "$TEST_TMP/exporter-ip.log" --request-timeout $((120 * SLOWER))
assert_eq "per-address cap (256): of 300 connections from one address, 44 are closed at once" \
  "44" "$("${LOAD[@]}" cap "$EXPORTER" --open 300 --source 127.0.0.9 | json /dev/stdin 'd["closed_at_once"]')"
kill -TERM "$EXPORTER_PID"
wait "$EXPORTER_PID"

start_exporter "$TEST_TMP/exporter-cap.log" --max-connections 100 --request-timeout $((120 * SLOWER))
assert_eq "global cap (100): of 150 connections, 50 are closed at once, not queued" "50" \
  "$("${LOAD[@]}" cap "$EXPORTER" --open 150 --source 127.0.0.10 | json /dev/stdin 'd["closed_at_once"]')"
kill -TERM "$EXPORTER_PID"
wait "$EXPORTER_PID"

start_exporter "$TEST_TMP/exporter-idle.log" --request-timeout 2
"${LOAD[@]}" idle "$EXPORTER" >"$TEST_TMP/idle.json"
assert_eq "--request-timeout 2: a half request is closed after 2-$((2 + 2 * SLOWER)) s" "True" \
  "$(json "$TEST_TMP/idle.json" "d['closed'] and 1.9 <= d['seconds'] <= $((2 + 2 * SLOWER))")"
kill -TERM "$EXPORTER_PID"
wait "$EXPORTER_PID"

# --- collectors: only the per-VM families --------------------------------------------------------

start_exporter "$TEST_TMP/exporter-vm.log" --no-collector.vcpu --no-collector.iothread \
  --no-collector.emulator --no-collector.waited_behind
assert_eq "only the vm collector: no per-thread series, a vm_cpu_seconds per VM with vCPUs" "0 True" \
  "$(python3 - "$EXPORTER/metrics" <<'EOF'
import sys, urllib.request
lines = [l for l in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines()
         if not l.startswith("#")]
count = lambda prefix: sum(1 for l in lines if l.startswith(prefix))
per_thread = count("vcpumap_vcpu_") + count("vcpumap_iothread_") + count("vcpumap_emulator_")
print(per_thread, count("vcpumap_vm_cpu_seconds_total{") == count("vcpumap_vm_vcpus{") >= 16)
EOF
)"
kill -TERM "$EXPORTER_PID"
wait "$EXPORTER_PID"

# --- the same on a TLS + basic auth listener, with handshakes stalled halfway -------------------------

if command -v openssl >/dev/null; then
  make_web_config "$TEST_TMP"
  start_exporter "$TEST_TMP/exporter-tls.log" --cache 0 --request-timeout $((120 * SLOWER)) \
    --web.config.file "$TEST_TMP/web.yml"
  "${LOAD[@]}" hold "$EXPORTER" --half 1000 --silent 200 --stall-tls 100 --cafile "$TEST_TMP/tls.crt" \
    --user prom:s3cret --pid "$EXPORTER_PID" --term "$EXPORTER_PID" --timeout $((30 * SLOWER)) \
    >"$TEST_TMP/hold-tls.json" ||
    fatal "http_load.py hold (TLS) failed"
  check_hold "$TEST_TMP/hold-tls.json" "TLS + basic auth, 1,000 half requests + 200 silent + 100 mid-handshake" 1300
  check_rss "TLS hold" "$TEST_TMP/hold-tls.json"
  check_stop "$TEST_TMP/hold-tls.json" "TLS" 1300
  TLS_FIGURES=$(figures "$TEST_TMP/hold-tls.json")
  say "TLS hold: unloaded max | loaded median | loaded max: $TLS_FIGURES; peak RSS $((PEAK_RSS_KIB / 1024)) MiB"

  # Client certificates: a CA, a client it signed and one it did not.
  for name in ca client other; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
      -keyout "$TEST_TMP/$name.key" -out "$TEST_TMP/$name.csr" >/dev/null 2>&1
  done
  openssl x509 -req -in "$TEST_TMP/ca.csr" -key "$TEST_TMP/ca.key" -days 1 -out "$TEST_TMP/ca.crt" \
    >/dev/null 2>&1
  openssl x509 -req -in "$TEST_TMP/client.csr" -CA "$TEST_TMP/ca.crt" -CAkey "$TEST_TMP/ca.key" \
    -CAcreateserial -days 1 -out "$TEST_TMP/client.crt" >/dev/null 2>&1
  openssl x509 -req -in "$TEST_TMP/other.csr" -key "$TEST_TMP/other.key" -days 1 \
    -out "$TEST_TMP/other.crt" >/dev/null 2>&1 || fatal "openssl can't make the client certificates"
  printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n' \
    >"$TEST_TMP/web-mtls.yml"
  start_exporter "$TEST_TMP/exporter-mtls.log" --web.config.file "$TEST_TMP/web-mtls.yml"
  assert_eq "RequireAndVerifyClientCert: none 403, the CA's client 200, another 403" "403 200 403" \
    "$(cd "$TEST_TMP" && python3 - "$EXPORTER/healthz" <<'EOF'
import ssl, sys, urllib.error, urllib.request
codes = []
for cert in (None, "client", "other"):
    context = ssl.create_default_context(cafile="tls.crt")
    if cert:
        context.load_cert_chain(cert + ".crt", cert + ".key")
    try:
        codes.append(urllib.request.urlopen(sys.argv[1], context=context, timeout=10).status)
    except urllib.error.HTTPError as error:
        codes.append(error.code)
print(*codes)
EOF
)"
  kill -TERM "$EXPORTER_PID"
  wait "$EXPORTER_PID"

  if [[ -n "${VCPUMAP_BENCH_OUT:-}" ]]; then
    printf '| %s | %s CPUs | HTTP: 1,000 half + 200 silent | %s |\n' "$(date -u +%F)" "$(nproc)" \
      "$HOLD_FIGURES" >>"$VCPUMAP_BENCH_OUT"
    printf '| %s | %s CPUs | TLS: 1,000 half + 200 silent + 100 mid-handshake | %s |\n' \
      "$(date -u +%F)" "$(nproc)" "$TLS_FIGURES" >>"$VCPUMAP_BENCH_OUT"
  fi
else
  say "openssl not installed: TLS part skipped"
fi
