#!/usr/bin/env bash
# Issue 14's exporter targets at fleet scale: G look-alike guests x T vCPUs (fake_guest, as
# bench/run.sh makes them; 1,250 x 8 = 10,000 vCPU threads by default). For each source (bpf, the
# default, and procfs beside it) and each encoding (plain, gzip), bench/scrape_cost.py starts
# `vcpumap serve --cache 0` and scrapes it N+1 times one after another: the exporter's CPU per
# scrape (median of the last N, its threads' schedstat), the wall time, the body and the peak RSS.
# Targets: CPU per scrape <= 0.1 s with bpf, peak RSS <= 64 MiB, gzip when asked.
# Usage: bench/serve_cost.sh BUILD_DIR [G] [T] [N]
set -uo pipefail
BUILD=${1:?usage: bench/serve_cost.sh BUILD_DIR [G] [T] [N]}
G=${2:-1250}
T=${3:-8}
N=${4:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
VCPUMAP=$BUILD/src/cli/vcpumap
FAKE_GUEST=$BUILD/tests/fake_guest
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vcpumap-serve-bench.XXXXXX")
PARENT=
OLD_PID_MAX=
cleanup() {
  [[ -n "$PARENT" ]] && kill -TERM "$PARENT" 2>/dev/null && wait "$PARENT" 2>/dev/null
  [[ -n "$OLD_PID_MAX" ]] && sysctl -q -w kernel.pid_max="$OLD_PID_MAX"
  rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"  # the procfs sampler keeps a descriptor per thread file it can

threads_now=$(cut -d' ' -f4 /proc/loadavg | cut -d/ -f2)
want_pids=$((threads_now + G * (T + 2) + 4096))
if (($(cat /proc/sys/kernel/pid_max) < want_pids)); then
  OLD_PID_MAX=$(cat /proc/sys/kernel/pid_max)
  sysctl -q -w kernel.pid_max="$want_pids" ||
    { OLD_PID_MAX=; echo "bench: kernel.pid_max is below the $want_pids that G x T needs" >&2; exit 1; }
fi

"$FAKE_GUEST" --guests "$G" --threads "$T" --iothread -name guest=servebench >"$TMP/pids" &
PARENT=$!
for ((i = 0; i < 1200; i++)); do
  [[ $(grep -c '' "$TMP/pids" 2>/dev/null) -ge $G ]] && break
  sleep 0.1
done
(($(grep -c '' "$TMP/pids") == G)) || { echo "bench: only $(grep -c '' "$TMP/pids") of $G guests started" >&2; exit 1; }
sleep 1  # every thread named
# What else shares the machine: the load average and the VMs that are not ours (the exporter
# serves every VM of the host, so other developers' guests add to its series).
vms=$("$VCPUMAP" --no-libvirt list --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vms"]))')
load="load $(cut -d' ' -f1-3 /proc/loadavg), $((vms - G)) other VMs on the host"

for source in bpf procfs; do
  for encoding in plain gzip; do
    python3 "$HERE/scrape_cost.py" "$VCPUMAP" "$source" "$encoding" "$N" >>"$TMP/cost" ||
      { echo "bench: scrape_cost $source $encoding failed" >&2; exit 1; }
  done
done

python3 - "$TMP/cost" <<PY
import json, sys
G, T, N = $G, $T, $N
rows = {(r["source"], r["encoding"]): r for r in map(json.loads, open(sys.argv[1]))}


def verdict(value, target, unit):
    return "met" if value <= target else f"MISSED by {value - target:.3f}{unit}"


print(f"(d) serve at {G} x {T} ({G * T} vCPU threads), --cache 0, {N} scrapes each; $load")
for (source, encoding), r in rows.items():
    print(f"    {source:6} {encoding:5} CPU {r['cpu'] * 1e3:6.1f} ms a scrape "
          f"({r['cpu_lo'] * 1e3:.1f}-{r['cpu_hi'] * 1e3:.1f})   wall {r['wall'] * 1e3:6.1f} ms   "
          f"{r['bytes'] / 1e6:.2f} MB, {r['series']} series   peak RSS {r['rss_kib'] / 1024:.1f} MiB")
bpf = max(rows[("bpf", "plain")]["cpu"], rows[("bpf", "gzip")]["cpu"])
procfs = rows[("procfs", "plain")]["cpu"]
print(f"    bpf CPU a scrape {bpf:.3f} s, gzip included (target <= 0.1 s: {verdict(bpf, 0.1, ' s')})"
      f"   procfs/bpf {procfs / rows[('bpf', 'plain')]['cpu']:.1f}x")
rss = max(r["rss_kib"] for r in rows.values()) / 1024
print(f"    exporter peak RSS {rss:.1f} MiB, either source (target <= 64 MiB: {verdict(rss, 64, ' MiB')})")
ratio = rows[("bpf", "gzip")]["bytes"] / rows[("bpf", "plain")]["bytes"]
print(f"    gzip when asked: {rows[('bpf', 'gzip')]['bytes'] / 1e6:.2f} MB, {ratio:.3f} of the text "
      f"({'met' if ratio < 0.5 else 'MISSED'})")
PY
