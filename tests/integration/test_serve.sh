#!/usr/bin/env bash
# `vcpumap serve` against a real Prometheus: TCG guests and a fake guest with a hostile name, the
# exporter on a free loopback port, Prometheus (Debian `prometheus`) scraping it every second.
# Checks that Prometheus' series and values agree with `vcpumap list --json`, that promtool
# accepts the output and the shipped rules, the HTTP rules (read-only, health, JSON), TLS and
# basic auth from a --web.config.file, a bounded load test (50 clients), and a clean SIGTERM.
# Usage: bash tests/integration/test_serve.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
# Set VCPUMAP_BENCH_OUT=FILE to append the load test's figures (a BENCHMARKS.md table row).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v prometheus >/dev/null || skip "prometheus is not installed (Debian package prometheus)"
command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
FAKE_GUEST=${2:-${FAKE_GUEST:-$(dirname "$VCPUMAP")/../../tests/fake_guest}}
[[ -x "$FAKE_GUEST" ]] || skip "no fake_guest at $FAKE_GUEST (build the fake_guest target)"
HELPER="$TEST_TMP/serve_helper.py"


# http METHOD URL [curl-like extras via env]: prints "STATUS\nBODY" using python3 (no curl needed).
cat >"$HELPER" <<'EOF'
import base64, json, signal, ssl, sys, time, urllib.error, urllib.parse, urllib.request
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head -n1` is fine

def http(method, url, user=None, cafile=None):
    request = urllib.request.Request(url, method=method)
    if user:
        request.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers

def query(prom, expr):
    status, body, _ = http("GET", f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    data = json.loads(body)
    if data.get("status") != "success":
        raise SystemExit(f"query {expr}: {data}")
    return data["data"]["result"]

command = sys.argv[1]
if command == "http":  # http METHOD URL [USER:PASS] [CAFILE]
    status, body, headers = http(sys.argv[2], sys.argv[3], *(a or None for a in sys.argv[4:]))
    print(status)
    sys.stdout.flush()
    sys.stdout.buffer.write(body)
elif command == "header":  # header URL NAME
    print(http("GET", sys.argv[2])[2].get(sys.argv[3], ""))
elif command == "query":  # query PROM EXPR: one line per series, "labels-json value"
    for series in query(sys.argv[2], sys.argv[3]):
        print(json.dumps(series["metric"], sort_keys=True), series["value"][1])
elif command == "wait":  # wait PROM EXPR MIN_SERIES TIMEOUT
    deadline = time.time() + float(sys.argv[5])
    while time.time() < deadline:
        try:
            if len(query(sys.argv[2], sys.argv[3])) >= int(sys.argv[4]):
                sys.exit(0)
        except Exception:
            pass
        time.sleep(0.5)
    sys.exit(1)
EOF
helper() { python3 "$HELPER" "$@"; }

# --- guests ------------------------------------------------------------------------------------

make_spin_disk "$TEST_TMP/spin.img" || fatal "can't write the boot sector"
start_guest itest-serve-spin -smp 2 -drive "file=$TEST_TMP/spin.img,format=raw,if=ide" ||
  fatal "can't start itest-serve-spin"
SPIN=$GUEST_PID
start_guest itest-serve-io -smp 1 -object iothread,id=io1 || fatal "can't start itest-serve-io"
IO=$GUEST_PID
wait_vcpu_threads "$SPIN" 2 || fatal "itest-serve-spin: no vCPU threads"
wait_vcpu_threads "$IO" 1 || fatal "itest-serve-io: no vCPU threads"
# Pin the idle guest's vCPU to CPU 1 so its last CPU is known: it must read 1 everywhere.
IO_VCPU0=$(vcpu_tid "$IO" 0)
taskset -pc 1 "$IO_VCPU0" >/dev/null || fatal "can't pin itest-serve-io's vCPU 0"

HOSTILE_NAME=$'itest "serve" \\ back\\slash'
start_background_as qemu-system-x86_64 "$FAKE_GUEST" -name "guest=$HOSTILE_NAME,debug-threads=on" \
  --threads 3 >"$TEST_TMP/hostile.out"
HOSTILE=$BG_PID
for ((i = 0; i < 100; i++)); do [[ -s "$TEST_TMP/hostile.out" ]] && break; sleep 0.05; done
say "guests: spin pid $SPIN, io pid $IO, hostile pid $HOSTILE"

# --- the exporter ------------------------------------------------------------------------------

start_exporter "$TEST_TMP/exporter.log"
FIRST_EXPORTER_PID=$EXPORTER_PID
say "exporter pid $EXPORTER_PID at $EXPORTER"

helper http GET "$EXPORTER/metrics" >"$TEST_TMP/metrics.out"
assert_eq "GET /metrics: 200" "200" "$(head -n1 "$TEST_TMP/metrics.out")"
tail -n +2 "$TEST_TMP/metrics.out" >"$TEST_TMP/metrics.txt"
assert_eq "GET /metrics: content type" "text/plain; version=0.0.4; charset=utf-8" \
  "$(helper header "$EXPORTER/metrics" Content-Type)"
lint=$(promtool check metrics <"$TEST_TMP/metrics.txt" 2>&1)
assert_eq "promtool check metrics passes (no lint findings)" "0:" "$?:$lint"
quietly() { "$@" >"$TEST_TMP/quiet.out" 2>&1 || { cat "$TEST_TMP/quiet.out" >&2; return 1; }; }
assert_true "promtool check rules: contrib/prometheus/vcpumap-rules.yml" \
  quietly promtool check rules "$SOURCE_DIR/contrib/prometheus/vcpumap-rules.yml"
assert_true "promtool check config: contrib/prometheus/prometheus.yml" \
  quietly promtool check config "$SOURCE_DIR/contrib/prometheus/prometheus.yml"

for method in POST PUT DELETE PATCH; do
  assert_eq "$method /metrics is refused with 405" "405" \
    "$(helper http "$method" "$EXPORTER/metrics" | head -n1)"
done
assert_eq "GET /healthz" $'200\nok' "$(helper http GET "$EXPORTER/healthz")"
assert_eq "GET /nothing: 404" "404" "$(helper http GET "$EXPORTER/nothing" | head -n1)"
helper http GET "$EXPORTER/api/v1/snapshot" | tail -n +2 >"$TEST_TMP/api.json"
expect_vcpumap --no-libvirt list --json
assert_eq "/api/v1/snapshot: the same VMs as list --json" \
  "$(json_eval "$OUT" "sorted(v['pid'] for v in d['vms'])")" \
  "$(json_eval "$(cat "$TEST_TMP/api.json")" "sorted(v['pid'] for v in d['vms'])")"
assert_eq "/api/v1/snapshot: the same keys as list --json" \
  "$(json_eval "$OUT" "sorted(d.keys())")" "$(json_eval "$(cat "$TEST_TMP/api.json")" "sorted(d.keys())")"

# --- Prometheus scraping it ----------------------------------------------------------------------

start_prometheus "$SOURCE_DIR/contrib/prometheus/vcpumap-rules.yml"
helper wait "$PROM" "vcpumap_vcpu_cpu_seconds_total{vm=\"itest-serve-spin\"}" 2 60 ||
  fatal "Prometheus has no vcpumap series after 60 s: $(tail -n 5 "$TEST_TMP/prometheus.log")"
# Several scrapes, so counters can be seen to move and never go back: wait for five.
helper wait "$PROM" 'count_over_time(up{job="vcpumap"}[1m]) >= 5' 1 60 ||
  fatal "Prometheus did not scrape the exporter five times in 60 s"
say "prometheus pid $PROM_PID at $PROM scrapes the exporter"

assert_eq "Prometheus: up{job=vcpumap} is 1" "1" \
  "$(helper query "$PROM" 'up{job="vcpumap"}' | awk '{print $NF}')"
for counter in vcpumap_vcpu_cpu_seconds_total vcpumap_vcpu_run_delay_seconds_total \
  vcpumap_vcpu_migrations_total vcpumap_iothread_cpu_seconds_total; do
  # Empty when the kernel lacks the figure (no schedstats): the compare below checks presence.
  assert_in "Prometheus: $counter never went back (no reset in 1 minute)" \
    "$(helper query "$PROM" "max(resets(${counter}[1m]))" | awk '{print $NF}')" 0 ""
done
assert_eq "Prometheus: vCPU 0 of itest-serve-spin burns CPU" "1" \
  "$(helper query "$PROM" 'rate(vcpumap_vcpu_cpu_seconds_total{vm="itest-serve-spin",vcpu="0"}[10s]) > bool 0.2' | awk '{print $NF}')"
assert_eq "Prometheus: the exporter's own metrics" "0" \
  "$(helper query "$PROM" 'vcpumap_scrape_errors_total' | awk '{print $NF}')"
assert_eq "Prometheus: the recording rules evaluate" "1" \
  "$(helper query "$PROM" 'count(vm:vcpumap_vcpu_cpu_seconds:rate5m{vm="itest-serve-spin"}) > 0' | awk '{print $NF}')"

# Prometheus before, list --json, Prometheus after: every counter is between the two samples.
helper query "$PROM" '{__name__=~"vcpumap_(vcpu|iothread)_.*|vcpumap_host_cpu_info|vcpumap_vm_info"}' >"$TEST_TMP/before"
expect_vcpumap --no-libvirt list --json
cp "$OUT_FILE" "$TEST_TMP/list.json"
# The exporter caches 1 s: a scrape that starts more than 1 s after the list reads newer samples.
LISTED_AT=$(date +%s.%N)
helper wait "$PROM" "timestamp(up{job=\"vcpumap\"}) > $LISTED_AT + 1.2" 1 30 ||
  fatal "Prometheus scraped nothing newer than the list in 30 s"
helper query "$PROM" '{__name__=~"vcpumap_(vcpu|iothread)_.*|vcpumap_host_cpu_info|vcpumap_vm_info"}' >"$TEST_TMP/after"
python3 - "$TEST_TMP/before" "$TEST_TMP/list.json" "$TEST_TMP/after" "$SPIN,$IO,$HOSTILE" \
  "$IO_VCPU0" <<'EOF' >"$TEST_TMP/compare.out" 2>&1
import json, sys
def load(path):
    out = {}
    for line in open(path):
        labels, value = line.rsplit(" ", 1)
        labels = json.loads(labels)
        out[(labels.pop("__name__"), tuple(sorted(labels.items())))] = float(value)
    return out
before, after = load(sys.argv[1]), load(sys.argv[3])
listing = json.load(open(sys.argv[2]))
pids = [int(p) for p in sys.argv[4].split(",")]
pinned_tid = int(sys.argv[5])
bad = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok: bad.append(what)
def series(metrics, name, **want):
    return {dict(k[1]).get("vcpu") or dict(k[1]).get("iothread"): v for k, v in metrics.items()
            if k[0] == name and all(dict(k[1]).get(a) == b for a, b in want.items())}
hz = 100
for vm in listing["vms"]:
    if vm["pid"] not in pids:
        continue
    name = vm["name"]
    info = [dict(k[1]) for k in after if k[0] == "vcpumap_vm_info" and dict(k[1]).get("pid") == str(vm["pid"])]
    check(len(info) == 1 and info[0]["vm"] == name, f"vm_info of pid {vm['pid']} names it {name!r} exactly (got {info and info[0].get('vm')!r})")
    for metric in ("vcpumap_vcpu_cpu_seconds_total", "vcpumap_vcpu_last_cpu", "vcpumap_vcpu_affinity_cpus"):
        got = series(after, metric, vm=name)
        check(len(got) == len(vm["vcpus"]), f"{name!r}: {len(vm['vcpus'])} vCPU series of {metric} (got {len(got)})")
    for vcpu in vm["vcpus"]:
        k = str(vcpu["vcpu"])
        seconds = vcpu["cpu_time_ns"] / 1e9 if vcpu["cpu_time_ns"] is not None else vcpu["cpu_time_ticks"] / hz
        b = series(before, "vcpumap_vcpu_cpu_seconds_total", vm=name).get(k)
        a = series(after, "vcpumap_vcpu_cpu_seconds_total", vm=name).get(k)
        check(b is not None and a is not None and b <= seconds + 1e-9 <= a + 2e-9,
              f"{name!r} vCPU {k}: cpu seconds before {b} <= list {seconds} <= after {a}")
        if vcpu["run_delay_ns"] is not None:
            d0 = series(before, "vcpumap_vcpu_run_delay_seconds_total", vm=name).get(k)
            d1 = series(after, "vcpumap_vcpu_run_delay_seconds_total", vm=name).get(k)
            check(d0 is not None and d0 <= vcpu["run_delay_ns"] / 1e9 + 1e-9 <= d1 + 2e-9,
                  f"{name!r} vCPU {k}: run delay before {d0} <= list {vcpu['run_delay_ns'] / 1e9} <= after {d1}")
        if vcpu["migrations"] is not None:
            m0 = series(before, "vcpumap_vcpu_migrations_total", vm=name).get(k)
            m1 = series(after, "vcpumap_vcpu_migrations_total", vm=name).get(k)
            check(m0 is not None and m0 <= vcpu["migrations"] <= m1,
                  f"{name!r} vCPU {k}: migrations before {m0} <= list {vcpu['migrations']} <= after {m1}")
        last = series(after, "vcpumap_vcpu_last_cpu", vm=name).get(k)
        check(last is not None and int(last) in vcpu["affinity"], f"{name!r} vCPU {k}: last CPU {last} within affinity {vcpu['affinity']}")
        aff = series(after, "vcpumap_vcpu_affinity_cpus", vm=name).get(k)
        check(aff == len(vcpu["affinity"]), f"{name!r} vCPU {k}: affinity count {aff} == {len(vcpu['affinity'])}")
        if vcpu["tid"] == pinned_tid:
            check(vcpu["cpu"] == 1 and last == 1, f"pinned vCPU: last CPU 1 in list ({vcpu['cpu']}) and Prometheus ({last})")
            infos = [dict(k2[1])["cpus"] for k2 in after if k2[0] == "vcpumap_vcpu_affinity_info" and dict(k2[1]).get("vm") == name]
            check(infos == ["1"], f"pinned vCPU: affinity_info cpus {infos} == ['1']")
    if vm["iothreads"]:
        got = series(after, "vcpumap_iothread_cpu_seconds_total", vm=name)
        check(sorted(got) == sorted(t["id"] for t in vm["iothreads"]), f"{name!r}: iothread series {sorted(got)}")
cpus = [dict(k[1]) for k in after if k[0] == "vcpumap_host_cpu_info"]
check(len(cpus) == listing["host"]["cpus_online"], f"host_cpu_info: {len(cpus)} CPUs")
sys.exit(1 if bad else 0)
EOF
status=$?
CHECKS=$((CHECKS + 1))
((status == 0)) || fail "Prometheus agrees with vcpumap list --json" "$(grep FAIL "$TEST_TMP/compare.out")"
[[ -n "${VERBOSE:-}" ]] && cat "$TEST_TMP/compare.out"

# The hostile name by an exact PromQL match, escaped as PromQL wants it.
promql_name=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$HOSTILE_NAME")
assert_eq "Prometheus: the guest named with '\"' and '\\' has its 3 vCPUs under its exact name" "3" \
  "$(helper query "$PROM" "count(vcpumap_vcpu_cpu_seconds_total{vm=$promql_name})" | awk '{print $NF}')"

# --- load: 50 concurrent clients -------------------------------------------------------------------

REQUESTS=${SERVE_LOAD_REQUESTS:-40}
snapshots_before=$(helper query "$PROM" 'vcpumap_snapshots_total' | awk '{print $NF}')
python3 - "$EXPORTER/metrics" 50 "$REQUESTS" >"$TEST_TMP/load.out" <<'EOF'
import http.client, sys, threading, time, urllib.parse
url = urllib.parse.urlparse(sys.argv[1]); clients = int(sys.argv[2]); per_client = int(sys.argv[3])
latencies, failures, lock = [], [], threading.Lock()
start_gate = threading.Barrier(clients)
def client():
    connection = None
    start_gate.wait()
    for _ in range(per_client):
        t0 = time.perf_counter()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            connection.request("GET", url.path)
            response = connection.getresponse()
            body = response.read()
            ok = response.status == 200 and b"vcpumap_vcpu_cpu_seconds_total" in body
            if response.getheader("Connection", "").lower() == "close":
                connection.close(); connection = None
        except Exception as error:
            ok = False; connection = None
            with lock: failures.append(repr(error))
        with lock:
            latencies.append(time.perf_counter() - t0)
            if not ok: failures.append("bad answer")
t0 = time.perf_counter()
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - t0
latencies.sort()
pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
print(f"{len(latencies)} {len(failures)} {pct(0.50):.1f} {pct(0.99):.1f} {latencies[-1]*1000:.1f} {wall:.2f} {len(latencies)/wall:.0f}")
EOF
read -r answered failed p50 p99 pmax wall rps <"$TEST_TMP/load.out"
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$EXPORTER_PID/status")
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$EXPORTER_PID/status")
threads_now=$(awk '/^Threads:/ {print $2}' "/proc/$EXPORTER_PID/status")
assert_eq "load: 50 clients x $REQUESTS requests all answered" "$((50 * REQUESTS)) 0" "$answered $failed"
snapshots_after=$(helper http GET "$EXPORTER/metrics" | awk '$1 == "vcpumap_snapshots_total" {print $2}')
taken=$((snapshots_after - snapshots_before))
allowed=$(python3 -c "import math; print(math.ceil($wall) + 4 + 4)")  # + Prometheus + the waits
CHECKS=$((CHECKS + 1))
((taken <= allowed)) || fail "load: one snapshot per cache interval" "$taken snapshots for $((50 * REQUESTS)) requests in ${wall}s (allowed $allowed)"
summary="| $(date -u +%F) | $(nproc) CPUs | 50 × $REQUESTS | $answered/$((50 * REQUESTS)) | ${p50} ms | ${p99} ms | ${pmax} ms | $rps req/s | $((rss_kb / 1024)) MiB (peak $((hwm_kb / 1024)) MiB) | $taken |"
say "load: $summary"
say "load: exporter threads $threads_now"
[[ -n "${VCPUMAP_BENCH_OUT:-}" ]] && printf '%s\n' "$summary" >>"$VCPUMAP_BENCH_OUT"

# --- TLS and basic auth from a web config ----------------------------------------------------------

if command -v openssl >/dev/null; then
  make_web_config "$TEST_TMP"
  start_exporter "$TEST_TMP/exporter-tls.log" --web.config.file "$TEST_TMP/web.yml"
  assert_match "TLS exporter: https" "$EXPORTER" '^https://'
  assert_eq "TLS + auth: right password: 200" "200" \
    "$(helper http GET "$EXPORTER/metrics" prom:s3cret "$TEST_TMP/tls.crt" | head -n1)"
  assert_eq "TLS + auth: no password: 401" "401" \
    "$(helper http GET "$EXPORTER/metrics" "" "$TEST_TMP/tls.crt" | head -n1)"
  assert_eq "TLS + auth: wrong password: 401" "401" \
    "$(helper http GET "$EXPORTER/metrics" prom:wrong "$TEST_TMP/tls.crt" | head -n1)"
  assert_eq "TLS + auth: POST with the right password is still 405" "405" \
    "$(helper http POST "$EXPORTER/metrics" prom:s3cret "$TEST_TMP/tls.crt" | head -n1)"
  printf 'tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  cipher_suites: [x]\n' \
    >"$TEST_TMP/bad.yml"
  run_vcpumap serve --listen 127.0.0.1:0 --web.config.file "$TEST_TMP/bad.yml"
  assert_eq "a web config key vcpumap can't honour is refused (exit 2)" "2" "$STATUS"
  assert_contains "... and named" "$ERR" "cipher_suites"
  kill -TERM "$EXPORTER_PID"
  wait "$EXPORTER_PID"
  assert_eq "TLS exporter: exits 0 on SIGTERM" "0" "$?"
else
  say "openssl not installed: TLS part skipped"
fi

# --- bad flags, then a clean SIGTERM of the first exporter -------------------------------------------

run_vcpumap serve --listen nonsense
assert_eq "serve --listen nonsense: exit 2" "2" "$STATUS"
assert_contains "serve --listen nonsense: says what would work" "$ERR" "ADDR:PORT"
run_vcpumap --no-libvirt serve --listen "127.0.0.1:$PROM_PORT"
assert_eq "serve on a port in use: exit 1" "1" "$STATUS"
assert_contains "serve on a port in use: says so" "$ERR" "in use"

kill -TERM "$FIRST_EXPORTER_PID"
SECONDS=0
wait "$FIRST_EXPORTER_PID"
assert_eq "exporter: exits 0 on SIGTERM" "0" "$?"
CHECKS=$((CHECKS + 1))
((SECONDS <= 6)) || fail "exporter: stops within 6 s of SIGTERM" "took ${SECONDS}s"
assert_contains "exporter: says it stopped" "$(cat "$TEST_TMP/exporter.log")" "SIGTERM: stopped"
