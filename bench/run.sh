#!/usr/bin/env bash
# Issue 11's benchmark (issue 4's before it), in one run. It starts fake_guest processes (argv
# qemu-system-x86_64, T threads "CPU n/KVM" plus "IO io1" and the main thread) in three steps, A,
# then B, then C guests in all, and at each size runs its commands interleaved, R rounds, medians
# of whole-process CPU time (user+sys, from wait4) and peak RSS:
#   (a) at A x T: `vcpumap --no-libvirt list --json` (default source, bpf here) beside
#       `--source procfs`, `ps -L -o pid,tid,psr,stat,comm,time -p PIDS` and bench/floor
#       snapshot (open+read+close stat, schedstat, sched of every thread once);
#   (b) at B x T: one sampler interval of each source, `vcpumap --source S top -b -n K+1 -d 0.1`
#       minus `-n 1`, over K (output filtered to no VM); then a running `top -b -d 1` of each
#       source, whose CPU time (its threads' schedstat, in ns) is read across W refreshes: the
#       cost of sampling at 1 Hz, discovery every 2 s included, start-up excluded;
#   (c) at C x T: peak RSS of `list --json` and of the sampler (`top -b -n 5`) of each source,
#       and the descriptors a running `top -b` holds with each source.
# Usage: bench/run.sh BUILD_DIR [A] [B] [C] [T] [R] [K] [W]
set -uo pipefail
BUILD=${1:?usage: bench/run.sh BUILD_DIR [A] [B] [C] [T] [R] [K] [W]}
A=${2:-200}
B=${3:-1250}
C=${4:-2000}
T=${5:-8}
R=${6:-5}
K=${7:-30}
W=${8:-10}
((A <= B && B <= C)) || { echo "bench: sizes must grow: A <= B <= C" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
VCPUMAP=$BUILD/src/cli/vcpumap
FAKE_GUEST=$BUILD/tests/fake_guest
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vcpumap-bench.XXXXXX")
PARENTS=()
WATCHED=
OLD_PID_MAX=
cleanup() {
  [[ -n "$WATCHED" ]] && kill -TERM "$WATCHED" 2>/dev/null && wait "$WATCHED" 2>/dev/null
  for parent in "${PARENTS[@]}"; do kill -TERM "$parent" 2>/dev/null && wait "$parent" 2>/dev/null; done
  [[ -n "$OLD_PID_MAX" ]] && sysctl -q -w kernel.pid_max="$OLD_PID_MAX"
  rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cc -O2 -o "$TMP/floor" "$HERE/floor.c" || exit 1
ulimit -n "$(ulimit -Hn)"  # as much as this shell may have; the procfs sampler says when short

# C guests of T+2 threads each must fit under pid_max beside what runs already; raised for the
# run only when they would not, and put back on exit.
threads_now=$(cut -d' ' -f4 /proc/loadavg | cut -d/ -f2)
want_pids=$((threads_now + C * (T + 2) + 4096))
if (($(cat /proc/sys/kernel/pid_max) < want_pids)); then
  OLD_PID_MAX=$(cat /proc/sys/kernel/pid_max)
  sysctl -q -w kernel.pid_max="$want_pids" ||
    { OLD_PID_MAX=; echo "bench: kernel.pid_max is below the $want_pids that C x T needs" >&2; exit 1; }
fi

PIDS=()
# Grows the fleet to $1 guests: one more fake_guest parent for the difference.
grow_to() {
  local more=$(($1 - ${#PIDS[@]})) file="$TMP/pids.${#PARENTS[@]}"
  ((more > 0)) || return 0
  "$FAKE_GUEST" --guests "$more" --threads "$T" --iothread -name "guest=bench${#PARENTS[@]}" >"$file" &
  PARENTS+=($!)
  for ((i = 0; i < 1200; i++)); do
    [[ $(grep -c '' "$file" 2>/dev/null) -ge $more ]] && break
    sleep 0.1
  done
  local started
  mapfile -t started <"$file"
  ((${#started[@]} == more)) || { echo "bench: only ${#started[@]} of $more guests started" >&2; exit 1; }
  PIDS+=("${started[@]}")
}

# What else shares the machine while a step runs: the load average and the VMs that are not ours.
others() {
  local vms
  vms=$("$VCPUMAP" --no-libvirt list --json 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vms"]))')
  echo "load $(cut -d' ' -f1-3 /proc/loadavg), $((vms - ${#PIDS[@]})) other VMs on the host"
}

# Runs `vcpumap --source $1 top -b -d 1` until it has refreshed $2 times after its second, and
# prints its CPU time per refresh (ns, from its threads' schedstat), the descriptors it holds
# then and its peak RSS (KiB).
watch_top() {
  local out="$TMP/watch.$1" before after n0 n1 fds hwm
  "$VCPUMAP" --source "$1" --no-libvirt top -b -d 1 -f no-such-vm >"$out" 2>/dev/null &
  WATCHED=$!
  refreshes() { local n; n=$(grep -c '^vcpumap top - ' "$out" 2>/dev/null); echo "${n:-0}"; }
  cpu_ns() { cat /proc/"$WATCHED"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
  for ((i = 0; i < 1200 && $(refreshes) < 2; i++)); do sleep 0.05; done
  n0=$(refreshes) before=$(cpu_ns)
  for ((i = 0; i < ($2 + 30) * 20 && $(refreshes) < n0 + $2; i++)); do sleep 0.05; done
  n1=$(refreshes) after=$(cpu_ns)
  fds=$(find /proc/"$WATCHED"/fd -mindepth 1 2>/dev/null | wc -l)
  hwm=$(awk '/^VmHWM/ {print $2}' /proc/"$WATCHED"/status)
  kill -TERM "$WATCHED" && wait "$WATCHED" 2>/dev/null
  WATCHED=
  ((n1 > n0)) || { echo "bench: top -b with $1 did not refresh" >&2; exit 1; }
  echo "$(((after - before) / (n1 - n0))) $fds $hwm"
}

# A run with no guests of ours: the fixed cost every command pays (start-up, BPF load, finding
# that no process is a VM).
{
  read -r version_cpu _
  read -r empty_bpf_cpu _
  read -r empty_procfs_cpu _
} < <(python3 "$HERE/measure.py" "$R" "$VCPUMAP" --version --- \
  "$VCPUMAP" --no-libvirt list --json --- "$VCPUMAP" --source procfs --no-libvirt list --json)
default_source=$("$VCPUMAP" --no-libvirt list --json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["source"])')

grow_to "$A"
sleep 1  # every thread named
threads=$(cat /proc/"${PIDS[0]}"/task/*/comm 2>/dev/null | wc -l)
noise_a=$(others)
PIDLIST=$(IFS=,; echo "${PIDS[*]}")
{
  read -r list_cpu list_rss list_lo list_hi
  read -r plist_cpu _ plist_lo plist_hi
  read -r ps_cpu _ ps_lo ps_hi
  read -r floor_cpu _ floor_lo floor_hi
} < <(python3 "$HERE/measure.py" "$R" \
  "$VCPUMAP" --no-libvirt list --json --- \
  "$VCPUMAP" --source procfs --no-libvirt list --json --- \
  ps -L -o pid,tid,psr,stat,comm,time -p "$PIDLIST" --- \
  "$TMP/floor" snapshot "${PIDS[@]}")
[[ -n "${floor_cpu:-}" ]] || { echo "bench: (a) did not complete" >&2; exit 1; }

grow_to "$B"
sleep 1
noise_b=$(others)
top_cmd() { echo "$VCPUMAP" --source "$1" --no-libvirt top -b -n "$2" -d 0.1 -f no-such-vm; }
{
  read -r btop1_cpu _ btop1_lo btop1_hi
  read -r btopk_cpu _ btopk_lo btopk_hi
  read -r ptop1_cpu _ ptop1_lo ptop1_hi
  read -r ptopk_cpu _ ptopk_lo ptopk_hi
} < <(python3 "$HERE/measure.py" "$R" $(top_cmd bpf 1) --- $(top_cmd bpf $((K + 1))) --- \
  $(top_cmd procfs 1) --- $(top_cmd procfs $((K + 1))))
[[ -n "${ptopk_cpu:-}" ]] || { echo "bench: (b) did not complete" >&2; exit 1; }
watch_top bpf "$W" >"$TMP/watch" || exit 1
read -r bwatch_ns _ _ <"$TMP/watch"
watch_top procfs "$W" >"$TMP/watch" || exit 1
read -r pwatch_ns _ _ <"$TMP/watch"

grow_to "$C"
sleep 1
noise_c=$(others)
{
  read -r _ clist_rss _ _
  read -r _ cplist_rss _ _
  read -r _ ctop_rss _ _
  read -r _ cptop_rss _ _
} < <(python3 "$HERE/measure.py" 3 "$VCPUMAP" --no-libvirt list --json --- \
  "$VCPUMAP" --source procfs --no-libvirt list --json --- $(top_cmd bpf 5) --- $(top_cmd procfs 5))
[[ -n "${cptop_rss:-}" ]] || { echo "bench: (c) did not complete" >&2; exit 1; }
watch_top bpf 2 >"$TMP/watch" || exit 1
read -r _ bfds bhwm <"$TMP/watch"
watch_top procfs 2 >"$TMP/watch" || exit 1
read -r _ pfds phwm <"$TMP/watch"

python3 - <<PY
A, B, C, T, threads, K = $A, $B, $C, $T, $threads, $K
source = "$default_source"
version, empty_bpf, empty_procfs = $version_cpu, $empty_bpf_cpu, $empty_procfs_cpu
lst, plst, ps, floor = $list_cpu, $plist_cpu, $ps_cpu, $floor_cpu
spread = {"list": ($list_lo, $list_hi), "procfs list": ($plist_lo, $plist_hi),
          "ps -L": ($ps_lo, $ps_hi), "floor": ($floor_lo, $floor_hi)}
bpf_interval = ($btopk_cpu - $btop1_cpu) / K
procfs_interval = ($ptopk_cpu - $ptop1_cpu) / K
bwatch, pwatch = $bwatch_ns / 1e9, $pwatch_ns / 1e9
rss = {"list": $clist_rss, "procfs list": $cplist_rss, "sampler": $ctop_rss,
       "procfs sampler": $cptop_rss, "top -b -d 1 (bpf)": $bhwm, "top -b -d 1 (procfs)": $phwm}
bfds, pfds = $bfds, $pfds


def verdict(ratio, target, at_most, unit="x"):
    met = ratio <= target if at_most else ratio >= target
    return "met" if met else f"MISSED by {abs(ratio - target):.2f}{unit}"


def ms(seconds):
    return f"{seconds * 1e3:.1f} ms"


print(f"default source: {source}; fixed cost (no guests of ours): --version {ms(version)}, "
      f"list --json {ms(empty_bpf)} (procfs {ms(empty_procfs)})")
print(f"(a) {A} x {T} ({threads} threads a guest, {A * threads} threads); $noise_a")
print(f"    list --json {ms(lst)} ({source})   --source procfs {ms(plst)}   ps -L {ms(ps)}   "
      f"floor {ms(floor)}")
print("    spread of the rounds (min-max): "
      + ", ".join(f"{k} {lo * 1e3:.1f}-{hi * 1e3:.1f}" for k, (lo, hi) in spread.items()))
print(f"    {source} vs floor {lst / floor:.2f}x (target <= 0.5: {verdict(lst / floor, 0.5, True)})"
      f"   ps -L / {source} {ps / lst:.2f}x (target >= 5: {verdict(ps / lst, 5, False)})")
print(f"    procfs vs floor {plst / floor:.2f}x   ps -L / procfs {ps / plst:.2f}x")
print(f"(b) {B} x {T} ({B * T} vCPU threads, {B * threads} threads); $noise_b")
print(f"    one interval (top -d 0.1, {K} intervals): bpf {bpf_interval * 1e3:.2f} ms   "
      f"procfs {procfs_interval * 1e3:.2f} ms   bpf/procfs 1/{procfs_interval / bpf_interval:.1f}"
      f" (target <= 1/15: {verdict(procfs_interval / bpf_interval, 15, False)})")
print(f"    sampling at 1 Hz (a running top -b -d 1): bpf {bwatch * 1e3:.2f} ms a refresh = "
      f"{bwatch * 100:.2f}% of a core   procfs {pwatch * 1e3:.2f} ms = {pwatch * 100:.1f}%   "
      f"bpf/procfs 1/{pwatch / bwatch:.1f}")
print(f"(c) {C} x {T} ({C * threads} threads); $noise_c")
print("    peak RSS: " + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in rss.items()))
worst = max(rss["list"], rss["sampler"], rss["top -b -d 1 (bpf)"]) / 1024
print(f"    bpf peak {worst:.1f} MiB (target <= 32 MiB: {verdict(worst, 32, True, ' MiB')})")
print(f"    descriptors of a running top -b: bpf {bfds}, procfs {pfds} "
      f"(target: none per thread with bpf: {'met' if bfds < 64 else 'MISSED'})")
PY
