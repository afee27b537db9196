#!/usr/bin/env bash
# Issue 12's benchmark: what the in-kernel delay split costs per sched event (BPF_ENABLE_STATS:
# run_time_ns / run_cnt of each program) and what `vcpumap delay` costs in user space (user+sys),
# at the host's own switch rate and with `perf bench sched pipe` driving it up. The switch rate
# is the sched_switch program's run count over the window: it runs on every switch of the host.
# Usage (root): bash bench/delay_cost.sh build/src/cli/vcpumap build/tests/fake_guest
set -euo pipefail
VCPUMAP=$1 FAKE_GUEST=$2
TMP=$(mktemp -d)
GUEST=""
PIPE=""
cleanup() {  # ends only what this script started, by PID
  local pid
  for pid in $PIPE $GUEST; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
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

measure() {
  /usr/bin/time -f "%U %S" -o "$TMP/time" "$VCPUMAP" --no-libvirt --json delay -d 5s \
    --program-stats bench-delay >"$TMP/delay.json"
  python3 - "$TMP/delay.json" "$TMP/time" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); user, system = map(float, open(sys.argv[2]).read().split())
p = {x["tracepoint"]: x for x in d["bpf_programs"]}
window = d["duration_ns"] / 1e9
c = d["vms"][0]["vcpus"][0]
fmt = lambda x: "-" if x["ns_per_run"] is None else "%.0f" % x["ns_per_run"]
print("%-14s %9.0f switches/s  ns/event: switch %s wakeup %s migrate %s  delay CPU %.3f s  "
      "split %.2f%% of schedstat" % (sys.argv[3], p["sched_switch"]["runs"] / window,
      fmt(p["sched_switch"]), fmt(p["sched_wakeup"]), fmt(p["sched_migrate_task"]),
      user + system, 100.0 * c["attributed_ns"] / c["run_delay_ns"]))
PY
}
measure "host as is"
# -T: threads, so the one PID ends all of it (the forked peer would outlive its parent).
perf bench sched pipe -T -l 100000000 >/dev/null 2>&1 &
PIPE=$!
sleep 0.3
measure "sched pipe"
