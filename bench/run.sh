#!/usr/bin/env bash
# Issue 4's benchmark: P fake guests x T vCPU threads (fake_guest, argv qemu-system-x86_64,
# threads "CPU n/KVM" plus "IO io1"), then by whole-process CPU time (user+sys, median of R runs):
#   (a) `vcpumap list --json --no-libvirt` vs `ps -L -o pid,tid,psr,stat,comm,time -p PIDS`
#       vs bench/floor snapshot (open+read+close stat, schedstat, sched of every thread once);
#   (b) one sampler interval (`vcpumap top -b -n K+1` minus `-n 1`, divided by K; output filtered
#       to nothing) vs bench/floor sample (pread on kept fds, same difference);
#   (c) peak RSS of `vcpumap list --json` and of the sampler.
# Usage: bench/run.sh BUILD_DIR [P] [T] [R] [K]
set -uo pipefail
BUILD=${1:?usage: bench/run.sh BUILD_DIR [P] [T] [R] [K]}
P=${2:-200}
T=${3:-8}
R=${4:-5}
K=${5:-50}
HERE=$(cd "$(dirname "$0")" && pwd)
VCPUMAP=$BUILD/src/cli/vcpumap
FAKE_GUEST=$BUILD/tests/fake_guest
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vcpumap-bench.XXXXXX")
PARENT=
cleanup() {
  [[ -n "$PARENT" ]] && kill -TERM "$PARENT" 2>/dev/null && wait "$PARENT" 2>/dev/null
  rm -rf -- "$TMP"
}
trap cleanup EXIT
cc -O2 -o "$TMP/floor" "$HERE/floor.c" || exit 1
# The sampler and its floor keep three files open per thread: give both room for all of them
# (as root the hard limit can be raised too), so neither falls back to reopening files.
want_files=$((P * (T + 2) * 3 + 4096))
if (($(ulimit -Hn) < want_files)); then ulimit -Hn "$want_files" 2>/dev/null; fi
ulimit -n "$(ulimit -Hn)"
# Without room the floor cannot keep its files open, and the sampler reopens some of them per
# sample (it says so): (b) is then not the comparison the benchmark means, and is left out.
keep_all=1
if (($(ulimit -n) < want_files)); then
  keep_all=0
  echo "note: ulimit -n is $(ulimit -n) and cannot be raised to the $want_files files that keeping" \
    "every thread's open takes: (b) is not measured" >&2
fi

"$FAKE_GUEST" --guests "$P" --threads "$T" --iothread -name guest=bench >"$TMP/pids" &
PARENT=$!
for ((i = 0; i < 600; i++)); do
  [[ $(grep -c '' "$TMP/pids") -ge $P ]] && break
  sleep 0.1
done
mapfile -t PIDS <"$TMP/pids"
((${#PIDS[@]} == P)) || { echo "only ${#PIDS[@]} of $P guests started" >&2; exit 1; }
sleep 1  # every thread named
threads=$(cat /proc/"${PIDS[0]}"/task/*/comm 2>/dev/null | wc -l)
PIDLIST=$(IFS=,; echo "${PIDS[*]}")

# All seven commands run in one interleaved series, so whatever else loads the machine falls on
# each of them alike.
{
  read -r list_cpu list_rss
  read -r ps_cpu _
  read -r floor_cpu _
  read -r top1_cpu _
  read -r topk_cpu top_rss
  read -r pfloor1_cpu _
  read -r pfloork_cpu _
} < <(python3 "$HERE/measure.py" "$R" \
  "$VCPUMAP" --no-libvirt list --json --- \
  ps -L -o pid,tid,psr,stat,comm,time -p "$PIDLIST" --- \
  "$TMP/floor" snapshot "${PIDS[@]}" --- \
  "$VCPUMAP" --no-libvirt top -b -n 1 -d 0.1 -f no-such-vm --- \
  "$VCPUMAP" --no-libvirt top -b -n $((K + 1)) -d 0.1 -f no-such-vm \
  $( ((keep_all)) && echo --- "$TMP/floor" sample 1 "${PIDS[@]}" \
    --- "$TMP/floor" sample $((K + 1)) "${PIDS[@]}"))
[[ -n "${topk_cpu:-}" ]] || { echo "the measurements did not complete" >&2; exit 1; }

python3 - "$P" "$T" "$threads" "$list_cpu" "$ps_cpu" "$floor_cpu" "$top1_cpu" "$topk_cpu" \
  "${pfloor1_cpu:-0}" "${pfloork_cpu:-0}" "$K" "$list_rss" "$top_rss" <<'PY'
import sys
P, T, threads = map(int, sys.argv[1:4])
lst, ps, floor, top1, topk, pf1, pfk = map(float, sys.argv[4:11])
K, list_rss, top_rss = map(int, sys.argv[11:14])
interval = (topk - top1) / K
pfloor = (pfk - pf1) / K


def verdict(ratio, target, at_most):
    met = ratio <= target if at_most else ratio >= target
    return "met" if met else f"MISSED by {abs(ratio - target):.2f}x"


print(f"{P} guests x {T} vCPUs ({threads} threads each, {P * threads} threads)")
print(f"(a) snapshot  vcpumap list --json {lst * 1e3:8.1f} ms   ps -L {ps * 1e3:8.1f} ms   "
      f"floor {floor * 1e3:8.1f} ms")
print(f"    vs floor {lst / floor:5.2f}x (target <= 1.5: {verdict(lst / floor, 1.5, True)})   "
      f"ps/vcpumap {ps / lst:5.2f}x (target >= 2: {verdict(ps / lst, 2, False)})")
if pfloor > 0:
    print(f"(b) interval  sampler {interval * 1e3:8.2f} ms   floor {pfloor * 1e3:8.2f} ms   "
          f"vs floor {interval / pfloor:5.2f}x (target <= 1.3: "
          f"{verdict(interval / pfloor, 1.3, True)})")
else:
    print(f"(b) interval  sampler {interval * 1e3:8.2f} ms   floor not measured (ulimit -n)")
rss_mib = max(list_rss, top_rss) / 1024
print(f"(c) peak RSS  list {list_rss / 1024:6.1f} MiB   sampler {top_rss / 1024:6.1f} MiB   "
      + (f"(target <= 32 MiB at 2,000 x 8: {'met' if rss_mib <= 32 else 'MISSED'})"
         if P >= 2000 else "(target applies at 2,000 x 8)"))
PY
