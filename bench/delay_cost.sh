#!/usr/bin/env bash
# Issue 12's benchmark: what the in-kernel delay split costs per sched event (BPF_ENABLE_STATS:
# run_time_ns / run_cnt of each program) and what `vcpumap delay` and the exporter (`serve`,
# waited_behind on, scraped every second) cost in user space (user+sys), at the host's own
# switch rate, with `perf bench sched pipe` held to 20% of a CPU (a cpu cgroup's CFS quota), and
# at its full speed. The switch rate is the sched_switch program's run count over the window: it
# runs on every switch of the host. With the aggregation in the kernel, user space's CPU must not
# grow with the switch rate.
# Usage (root): bash bench/delay_cost.sh build/src/cli/vcpumap build/tests/fake_guest
set -euo pipefail
VCPUMAP=$1 FAKE_GUEST=$2
TMP=$(mktemp -d)
GUEST=""
PIPE=""
SERVE=""
SCRAPER=""
CGROUP=/sys/fs/cgroup/cpu/vcpumap-bench-delay-$$
cleanup() {  # ends only what this script started, by PID
  local pid
  for pid in $SCRAPER $PIPE $SERVE $GUEST; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -d "$CGROUP" ]] && rmdir "$CGROUP" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
command -v perf >/dev/null || { echo "needs perf (linux-perf) for perf bench sched pipe" >&2; exit 1; }

(exec -a qemu-system-x86_64 "$FAKE_GUEST" -name guest=bench-delay,debug-threads=on --threads 1 \
  --busy >"$TMP/guest") &
GUEST=$!
for ((i = 0; i < 100; i++)); do [[ -s "$TMP/guest" ]] && break; sleep 0.05; done
for task in /proc/"$GUEST"/task/*; do
  [[ "$(<"$task/comm")" == "CPU 0/KVM" ]] && taskset -pc 1 "${task##*/}" >/dev/null
done

"$VCPUMAP" --no-libvirt serve --listen 127.0.0.1:0 2>"$TMP/serve.log" &
SERVE=$!
for ((i = 0; i < 100; i++)); do grep -q 'listening on' "$TMP/serve.log" && break; sleep 0.05; done
URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$TMP/serve.log" | head -n1)
[[ -n "$URL" ]] || { echo "vcpumap serve did not start: $(<"$TMP/serve.log")" >&2; exit 1; }
scrape() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10).read()' "$URL/metrics"; }
scrape  # the first scrape loads and attaches the split
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
  "$URL/metrics" >"$TMP/first.prom"
grep -q waited_behind "$TMP/first.prom" ||
  { echo "the exporter serves no waited_behind: $(<"$TMP/serve.log")" >&2; exit 1; }
# The exporter's CPU in ns: its threads' schedstat (bench/procstat.py), not clock ticks, which
# are 10 ms each and are charged to whatever runs when the tick fires.
serve_ns() { PYTHONPATH="$(dirname "$0")" python3 -c 'import sys, procstat; print(procstat.cpu_ns(sys.argv[1]))' "$SERVE"; }

# measure LABEL: one 5 s window: `delay`'s own CPU and the exporter's over it, scraped each second.
measure() {
  local before after
  (while :; do scrape; sleep 1; done) &
  SCRAPER=$!
  before=$(serve_ns)
  /usr/bin/time -f "%U %S" -o "$TMP/time" "$VCPUMAP" --no-libvirt --json delay -d 5s \
    --program-stats bench-delay >"$TMP/delay.json"
  after=$(serve_ns)
  kill "$SCRAPER" && wait "$SCRAPER" 2>/dev/null || true
  SCRAPER=""
  python3 - "$TMP/delay.json" "$TMP/time" "$1" $((after - before)) \
    >>"$TMP/rows" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); user, system = map(float, open(sys.argv[2]).read().split())
serve = int(sys.argv[4]) / 1e9
p = {x["tracepoint"]: x for x in d["bpf_programs"]}
window = d["duration_ns"] / 1e9
c = d["vms"][0]["vcpus"][0]
fmt = lambda x: "-" if x["ns_per_run"] is None else "%.0f" % x["ns_per_run"]
print("%s\t%.0f\t%s\t%s\t%s\t%.3f\t%.4f\t%.2f" % (sys.argv[3], p["sched_switch"]["runs"] / window,
      fmt(p["sched_switch"]), fmt(p["sched_wakeup"]), fmt(p["sched_migrate_task"]),
      user + system, serve, 100.0 * c["attributed_ns"] / c["run_delay_ns"]))
PY
}
# pipe_load QUOTA_US CPUS: perf bench sched pipe in the background, in a cgroup held to QUOTA_US
# per 100 ms ("" for no limit), on CPUS ("" for any). -T: threads, so the one PID ends all of it.
pipe_load() {
  local pin=()
  [[ -n "$2" ]] && pin=(taskset -c "$2")
  if [[ -n "$1" ]]; then
    mkdir -p "$CGROUP" && echo 100000 >"$CGROUP/cpu.cfs_period_us" && echo "$1" >"$CGROUP/cpu.cfs_quota_us"
    (echo "$BASHPID" >"$CGROUP/tasks" && exec "${pin[@]}" perf bench sched pipe -T -l 1000000000 >/dev/null 2>&1) &
  else
    (exec "${pin[@]}" perf bench sched pipe -T -l 1000000000 >/dev/null 2>&1) &
  fi
  PIPE=$!
  sleep 0.3
}
pipe_stop() { kill "$PIPE" 2>/dev/null && wait "$PIPE" 2>/dev/null || true; PIPE=""; }
measure "host as is"
pipe_load 20000 ""
measure "pipe at 20%"
pipe_stop
pipe_load "" ""
measure "pipe full"
pipe_stop
# The same rate with both ends of the pipe on CPU 0: the watched vCPU keeps CPU 1, and the
# exporter's scrapes find a CPU as free as at the host's own rate, so what remains of a rise in
# its CPU is the switch rate's and not contention's.
pipe_load "" 0
measure "pipe on CPU 0"
pipe_stop

python3 - "$TMP/rows" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("%-12s %12s %7s %7s %7s %10s %10s %7s" % ("load", "switches/s", "switch", "wakeup", "migrate",
      "delay CPU", "serve CPU", "split"))
print("%-12s %12s %7s %7s %7s %10s %10s %7s" % ("", "", "ns/ev", "ns/ev", "ns/ev", "s / 5 s", "s / 5 s",
      "% sched"))
for r in rows:
    print("%-12s %12s %7s %7s %7s %10s %10s %6s%%" % tuple(r))
low, high = rows[0], rows[-1]  # the host as is; the pipe at full speed on CPU 0
# The target is at a known, high switch rate: at a low one every run starts cold (see BENCHMARKS).
ns = float(high[2]) if high[2] != "-" else float("inf")
print("kernel: %.0f ns per sched_switch event at %s switches/s (target: <= 300 ns: %s)"
      % (ns, high[1], "met" if ns <= 300 else "MISSED by %.0f ns" % (ns - 300)))
for name, k in (("delay", 5), ("serve", 6)):
    a, b = float(low[k]), float(high[k])
    # Flat: at ~100x the switch rate, at most 1.5x the CPU (and 20 ms of slack: clock ticks).
    ok = b <= 1.5 * a + 0.02
    print("user space: %s's CPU %.3f s at %s switches/s, %.3f s at %s (x%.1f the rate): "
          "does not grow with the switch rate (target: at most 1.5x + 20 ms: %s)"
          % (name, a, low[1], b, high[1], float(high[1]) / max(float(low[1]), 1), "met" if ok
             else "MISSED by %.3f s" % (b - 1.5 * a - 0.02)))
PY
