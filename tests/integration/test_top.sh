#!/usr/bin/env bash
# `vcpumap top` against a real QEMU TCG guest and a busy look-alike (tests/tools/fake_guest):
# batch text (-b), JSON lines (--json) whose %CPU agrees with /proc's schedstat over the same
# interval, and the full-screen view driven in tmux (keys h, e, f, P, resize, q).
# Usage: bash tests/integration/test_top.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FAKE_GUEST=${2:-${FAKE_GUEST:-$(dirname "$VCPUMAP")/../../tests/fake_guest}}
[[ -x "$FAKE_GUEST" ]] || skip "no fake_guest at $FAKE_GUEST (build the fake_guest target)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"

# Our own tmux server (its socket named after this run), so no one else's session is touched.
TMUX_SOCKET="vcpumap-itest-top-$$"
tmux_() { tmux -L "$TMUX_SOCKET" "$@"; }
trap 'st=$?; command -v tmux >/dev/null && tmux_ kill-server 2>/dev/null; (exit $st); guests_on_exit' EXIT

# --- guests ------------------------------------------------------------------------------------

start_guest itest-top-q -smp 2 || fatal "QEMU guest did not start"
QEMU=$GUEST_PID
wait_vcpu_threads "$QEMU" 2 || fatal "QEMU's vCPU threads did not appear"
QEMU_TID0=$(vcpu_tid "$QEMU" 0)
QEMU_TID1=$(vcpu_tid "$QEMU" 1)

start_background_as qemu-system-x86_64 "$FAKE_GUEST" -name guest=itest-busy,debug-threads=on \
  --threads 1 --busy >"$TEST_TMP/busy.out"
BUSY=$BG_PID
wait_vcpu_threads "$BUSY" 1 5 || fatal "fake_guest's vCPU thread did not appear"
BUSY_TID=$(vcpu_tid "$BUSY" 0)
say "guests: qemu pid $QEMU, busy look-alike pid $BUSY (vCPU 0 tid $BUSY_TID)"

# --- top -b ------------------------------------------------------------------------------------

expect_vcpumap --no-libvirt top -b -n 3 -d 1
assert_eq "top -b -n 3: three iterations" "3" "$(grep -c '^vcpumap top - ' <<<"$OUT")"
assert_eq "top -b: each iteration has the table header" "3" \
  "$(grep -cE '^VM +VCPU +TID +CPU' <<<"$OUT")"
assert_eq "top -b: QEMU guest vCPU 0 in every iteration" "3" \
  "$(grep -cE "^itest-top-q +0 +$QEMU_TID0 +[0-9]+" <<<"$OUT")"
assert_eq "top -b: QEMU guest vCPU 1 in every iteration" "3" \
  "$(grep -cE "^itest-top-q +1 +$QEMU_TID1 +[0-9]+" <<<"$OUT")"
assert_eq "top -b: busy look-alike vCPU 0 in every iteration" "3" \
  "$(grep -cE "^itest-busy +0 +$BUSY_TID +[0-9]+" <<<"$OUT")"
assert_match "top -b: host CPU cells" "$OUT" $'\ncpu0 '
assert_not_contains "top -b: emulator rows are off by default" "$OUT" " main "
expect_vcpumap --no-libvirt top -b -n 1 -d 0.3 -e -f itest-top-q
assert_match "top -b -e: the main loop row" "$OUT" $'\nitest-top-q +main '
assert_not_contains "top -b -f: other VMs filtered out" "$OUT" "itest-busy "
run_vcpumap --no-libvirt top -b -n 1 -o X
assert_eq "top -o X: a bad sort key exits 2" "2" "$STATUS"
assert_contains "top -o X: the message names the keys" "$ERR" "N (name), P (%CPU)"

# --- top --json: lines parse; %CPU agrees with schedstat -----------------------------------------

schedstat_ns() {
  local ns rest
  read -r ns rest <"/proc/$BUSY/task/$BUSY_TID/schedstat" && echo "$ns"
}
before_ns=$(schedstat_ns)
before_wall=$(date +%s%N)
expect_vcpumap --no-libvirt --json top -n 3 -d 0.7
after_wall=$(date +%s%N)
after_ns=$(schedstat_ns)
assert_eq "top --json -n 3: three lines" "3" "$(grep -c '' "$OUT_FILE")"
CHECKS=$((CHECKS + 1))
python3 - "$OUT_FILE" "$QEMU" "$BUSY" <<'PY' || fail "top --json: every line is a JSON object with the vCPU keys" "$OUT"
import json, sys
qemu, busy = int(sys.argv[2]), int(sys.argv[3])
for n, line in enumerate(open(sys.argv[1], "rb")):
    d = json.loads(line)
    for key in ("time", "interval_s", "host", "vms"):
        assert key in d, f"line {n}: no {key}"
    vms = {v["pid"]: v for v in d["vms"]}
    assert qemu in vms and busy in vms, f"line {n}: guests missing: {sorted(vms)}"
    assert [c["vcpu"] for c in vms[qemu]["vcpus"]] == [0, 1], vms[qemu]["vcpus"]
    assert vms[qemu]["name"] == "itest-top-q"
    for v in vms.values():
        for c in v["vcpus"]:
            for key in ("vcpu", "tid", "cpu", "cpu_pct", "delay_pct", "migrations_per_s"):
                assert key in c, f"line {n}: vCPU without {key}: {c}"
            assert c["cpu_pct"] is None or c["cpu_pct"] >= 0, c
PY
# The busy thread's ns over the 3 intervals lie inside /proc's bracket around the whole run, and
# cover all of it but the time outside the intervals (start-up, exit), with a slack of 3% or
# 20 ms, whichever is more: the bracket's own reads and wall clocks are not taken at one instant
# (an ASan build once missed a fixed 20 ms by 2 ms).
CHECKS=$((CHECKS + 1))
python3 - "$OUT_FILE" "$BUSY" "$before_ns" "$after_ns" "$before_wall" "$after_wall" <<'PY' ||
import json, sys
path, busy = sys.argv[1], int(sys.argv[2])
b_ns, a_ns, b_wall, a_wall = map(int, sys.argv[3:])
lines = [json.loads(l) for l in open(path, "rb")]
ours = sum(next(v for v in d["vms"] if v["pid"] == busy)["vcpus"][0]["cpu_pct"] / 100
           * d["interval_s"] * 1e9 for d in lines)
covered = sum(d["interval_s"] for d in lines) * 1e9
proc = a_ns - b_ns
outside = (a_wall - b_wall) - covered
slack = max(20e6, 0.03 * proc)
print(f"test_top: busy vCPU: vcpumap {100 * ours / covered:.1f}% over {covered / 1e9:.2f}s, "
      f"/proc {100 * proc / (a_wall - b_wall):.1f}% over {(a_wall - b_wall) / 1e9:.2f}s")
sys.exit(0 if proc - outside - slack <= ours <= proc + slack else 1)
PY
  fail "top --json: the busy vCPU's %CPU agrees with schedstat over the same interval"

# --- full screen in tmux ------------------------------------------------------------------------

command -v tmux >/dev/null || skip "tmux is not installed (batch and JSON checks passed)"
SESSION=top
tmux_ new-session -d -s "$SESSION" -x 80 -y 24 \
  "'$VCPUMAP' --no-libvirt top -d 1; echo \$? >'$TEST_TMP/exit_status'"
screen() { tmux_ capture-pane -p -t "$SESSION"; }
keys() { tmux_ send-keys -t "$SESSION" "$@"; }

wait_screen "itest-busy" 5
SCREEN=$(screen)
assert_match "screen: the QEMU guest's vCPU 0" "$SCREEN" "itest-top-q +0 +$QEMU_TID0 "
assert_match "screen: the QEMU guest's vCPU 1" "$SCREEN" "itest-top-q +1 +$QEMU_TID1 "
assert_match "screen: the busy vCPU" "$SCREEN" "itest-busy +0 +$BUSY_TID "
assert_contains "screen: the CPU cells" "$SCREEN" "cpu0"
assert_eq "screen: 24 lines at 80x24" "24" "$(screen | wc -l)"
keys h
wait_screen "sort by %CPU" 2
assert_contains "key h: help" "$(screen)" "sort by %CPU"
keys x
wait_screen "h help" 2
assert_not_contains "any key leaves help" "$(screen)" "sort by %CPU"
keys e
wait_screen " main " 2
assert_match "key e: emulator rows on" "$(screen)" "itest-top-q +main "
keys e
wait_screen "emulator:off" 2
assert_not_contains "key e again: emulator rows off" "$(screen)" " main "
keys f
wait_screen "filter by VM" 2
keys itest-busy Enter
wait_screen "filter:itest-busy" 2
SCREEN=$(screen)
assert_contains "key f: the busy VM stays" "$SCREEN" "itest-busy "
assert_not_contains "key f: the other VM is filtered out" "$SCREEN" "itest-top-q "
keys f Enter
wait_screen "itest-top-q " 2
assert_contains "key f, empty: every VM again" "$(screen)" "itest-top-q "
keys P
wait_screen "sort:P" 2
assert_contains "key P: sorted by %CPU" "$(screen)" "sort:P"
tmux_ resize-window -t "$SESSION" -x 120 -y 40
for ((i = 0; i < 50; i++)); do
  [[ $(screen | wc -l) == 40 && "$(screen)" == *"itest-busy "* ]] && break
  sleep 0.1
done
assert_eq "resize to 120x40: the screen fills 40 lines" "40" "$(screen | wc -l)"
assert_contains "resize: the rows are still there" "$(screen)" "itest-busy "
tmux_ resize-window -t "$SESSION" -x 50 -y 10
wait_screen "vcpumap top" 5
assert_contains "resize to 50x10: still drawing" "$(screen)" "vcpumap top"
keys q
for ((i = 0; i < 30; i++)); do
  [[ -s "$TEST_TMP/exit_status" ]] && break
  sleep 0.1
done
assert_eq "key q: vcpumap exits 0" "0" "$(cat "$TEST_TMP/exit_status" 2>/dev/null)"
