#!/usr/bin/env bash
# The Grafana dashboard (contrib/grafana/) and the Prometheus rules (contrib/prometheus/) against a
# real Prometheus scraping a real `vcpumap serve` with a busy fake guest: every PromQL expression
# of the dashboard's panels and variables and of the rules returns data (an alert's expression
# without its threshold: its series exist), and the alerts pass their `promtool test rules`
# unit tests (tests/packaging/vcpumap-rules.test.yml).
# Usage: bash tests/packaging/test_dashboards.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
command -v prometheus >/dev/null || skip "prometheus is not installed (Debian package prometheus)"
command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
find_fake_guest "${2:-}"
DASHBOARD="$SOURCE_DIR/contrib/grafana/vcpumap-dashboard.json"
RULES="$SOURCE_DIR/contrib/prometheus/vcpumap-rules.yml"

quietly() { "$@" >"$TEST_TMP/quiet.out" 2>&1 || { cat "$TEST_TMP/quiet.out" >&2; return 1; }; }
assert_true "promtool test rules: the alerts' unit tests" \
  quietly promtool test rules "$SOURCE_DIR/tests/packaging/vcpumap-rules.test.yml"
assert_true "the dashboard is JSON" quietly /usr/bin/python3 -m json.tool "$DASHBOARD"

VM_NAME="itest-dash-$$"
start_fake dash -name "guest=$VM_NAME,debug-threads=on" --threads 2 --iothread --busy
start_exporter "$TEST_TMP/exporter.log" --collector.waited_behind
say "fake guest $VM_NAME pid $FAKE_PID, exporter at $EXPORTER"

start_prometheus "$RULES"

# Every expression, waited for (bounded: rates need two scrapes, the rules an evaluation after).
/usr/bin/python3 "$SOURCE_DIR/tests/packaging/promql_exprs.py" "$DASHBOARD" "$RULES" >"$TEST_TMP/exprs"
/usr/bin/python3 - "$PROM" "$TEST_TMP/exprs" >"$TEST_TMP/results" 2>&1 <<'EOF'
import json, sys, time, urllib.parse, urllib.request
prom, exprs = sys.argv[1], [json.loads(line) for line in open(sys.argv[2])]
deadline = time.monotonic() + 60
def query(expr):
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        answer = json.load(urllib.request.urlopen(url, timeout=10))
    except Exception as error:  # Prometheus still starting, or a 400 for a bad expression
        body = getattr(error, "read", lambda: b"")()
        return None, (json.loads(body).get("error") if body else repr(error))
    return len(answer["data"]["result"]), None
for e in exprs:
    while True:
        count, error = query(e["expr"])
        if count or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(json.dumps({"where": e["where"], "expr": e["expr"], "series": count, "error": error}))
EOF
CHECKS=$((CHECKS + 1))
[[ -s "$TEST_TMP/results" ]] || fail "Prometheus answered the queries" "$(cat "$TEST_TMP/results")"
# One python for every line: "WHERE<TAB>EXPR<TAB>VERDICT" (json_eval per line is slow on a busy host).
/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    verdict = "data" if r["series"] else "none (error: %s)" % r["error"]
    print("\t".join((r["where"], r["expr"], verdict)))' "$TEST_TMP/results" >"$TEST_TMP/verdicts"
while IFS=$'\t' read -r where expr verdict; do
  assert_eq "$where returns data: $expr" "data" "$verdict"
done <"$TEST_TMP/verdicts"
say "$(wc -l <"$TEST_TMP/exprs") expressions queried"
