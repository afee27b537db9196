#!/usr/bin/env bash
# `vcpumap delay`: who each vCPU waited behind, split in the kernel by BPF programs on the sched
# tracepoints. A busy vCPU pinned to one CPU with a host process spinning there waits behind that
# process, by name; two VMs' busy vCPUs pinned to one CPU wait behind each other; every split
# adds up to the schedstat run_delay delta within 5%; top shows each vCPU's largest culprit
# (WAITED BEHIND), key b its whole split, and n/a without BPF; serve exports the split (top 5
# culprits per vCPU plus other), and without BPF serves the rest and says why; with the procfs
# source, delay says in one line what it needs; report splits an exact recording as the kernel
# split the same window live.
# Usage: bash tests/integration/test_delay.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
find_fake_guest "${2:-}"

# --- without BPF: one line, exit 1 ---------------------------------------------------------------
run_vcpumap --no-libvirt --source procfs delay -d 1s
assert_eq "--source procfs: delay exits 1" "1" "$STATUS"
assert_eq "--source procfs: delay says it in one line" "1" "$(grep -c '' <<<"$ERR")"
assert_contains "--source procfs: delay names what it needs" "$ERR" "delay needs BPF"
assert_eq "--source procfs: delay prints nothing on stdout" "" "$OUT"
run_vcpumap --no-libvirt delay -d 2x
assert_eq "a bad duration is bad input" "2" "$STATUS"

((EUID == 0)) || skip "delay needs root for BPF"
run_vcpumap --no-libvirt delay -d 10ms nosuchvm-delay
assert_eq "an unknown VM is bad input" "2" "$STATUS"
[[ "$ERR" == *"needs BPF"* ]] && skip "BPF does not load here: $ERR"
expect_vcpumap --no-libvirt --json doctor
assert_eq "doctor: delay and record --exact use bpf here" "bpf bpf" \
  "$(json_eval "$OUT" "d['commands']['delay'] + ' ' + d['commands']['record --exact']")"
assert_eq "doctor: the event sources in record --exact's order" "bpf,perf" \
  "$(json_eval "$OUT" "[s['name'] for s in d['event_sources']]")"
expect_vcpumap --no-libvirt --source procfs --json doctor
# record --exact then uses perf, or nothing when tracefs is not mounted: never bpf.
assert_eq "doctor --source procfs: delay cannot run, record --exact does not use bpf" \
  "none (it needs BPF)|False" \
  "$(json_eval "$OUT" "d['commands']['delay'] + '|' + str(d['commands']['record --exact'] == 'bpf')")"

# The contended CPU: the last one, so CPU 0 keeps the rest of the machine going. The machine is
# shared, and the kernel groups each session's tasks (autogroup): the other sessions' tasks would
# take a share of the test's CPU whatever its nice values. So the test's threads go into a cpu
# cgroup of their own with the largest weight, for the few seconds it watches, and the cgroup is
# removed on exit once they are stopped.
CPU=$(($(nproc) - 1))
CGROUP=/sys/fs/cgroup/cpu/vcpumap-test-delay-$$
[[ -f /sys/fs/cgroup/cpu/cpu.shares ]] || skip "no cgroup v1 cpu controller at /sys/fs/cgroup/cpu"
mkdir "$CGROUP" || fatal "cannot make cgroup $CGROUP"
echo 262144 >"$CGROUP/cpu.shares" || fatal "cannot weigh cgroup $CGROUP"
eval "lib_exit_hook() $(declare -f guests_exit_hook | tail -n +2)"
# Our own tmux server (its socket named after this run) for top's full screen: no one else's.
TMUX_SOCKET="vcpumap-itest-delay-$$"
tmux_() { tmux -L "$TMUX_SOCKET" "$@"; }
guests_exit_hook() {  # runs after every process started here was stopped
  command -v tmux >/dev/null && tmux_ kill-server 2>/dev/null
  rmdir "$CGROUP" 2>/dev/null || echo "cgroup $CGROUP was not removed" >&2
  lib_exit_hook "$1"
}
SPINNER="$TEST_TMP/delay-spinner"
printf '#!/bin/bash\nwhile :; do :; done\n' >"$SPINNER"
chmod +x "$SPINNER"

# vcpu_tid PID: the tid of the fake guest's vCPU 0.
vcpu_tid() { thread_tid "$1" "CPU 0/KVM"; }
pin_to() {  # pin_to TID CPU: pins TID to CPU, in the test's cgroup
  taskset -pc "$2" "$1" >/dev/null || fatal "cannot pin thread $1 to CPU $2"
  echo "$1" >"$CGROUP/tasks" || fatal "cannot move thread $1 into $CGROUP"
}
contend() { pin_to "$1" "$CPU"; }  # contend TID: pins TID to $CPU, in the test's cgroup
stop() {  # stop PID...: ends processes this test started, and waits for them
  kill "$@"
  wait "$@" 2>/dev/null
}

# check_sums JSON LABEL: every vCPU's split adds up to its schedstat delta within 5%, and the
# culprits (with `other`) hold all of it.
check_sums() {
  local doc=$1 label=$2 row
  while read -r row; do
    [[ -n "$row" ]] || continue
    assert_eq "$label: $row" "ok" "$(cut -d' ' -f1 <<<"$row")"
  done < <(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for vm in d["vms"]:
    for c in vm["vcpus"]:
        delay, split = c["run_delay_ns"], c["attributed_ns"]
        total = sum(b["ns"] for b in c["behind"])
        ok = delay is not None and delay > 0 and abs(split - delay) <= 0.05 * delay \
            and total == max(delay, split)
        print("ok" if ok else "bad", "%s vCPU %d: split %d ns of schedstat %s ns (culprits sum %d)"
              % (vm["name"], c["vcpu"], split, delay, total))
' "$doc")
}

# --- a host process spinning where the vCPU runs ------------------------------------------------
start_fake spun -name "guest=itest-delay-spun,debug-threads=on" --threads 1 --busy
SPUN_PID=$FAKE_PID
SPUN_TID=$(vcpu_tid "$SPUN_PID") || fatal "no vCPU thread in fake guest $SPUN_PID"
contend "$SPUN_TID"
start_background_as delay-spinner "$SPINNER"
SPINNER_PID=$BG_PID
contend "$SPINNER_PID"
expect_vcpumap --no-libvirt --json delay -d 3s itest-delay-spun
json_valid "$OUT" || fatal "delay --json is not JSON: $OUT"
SPUN=$OUT
assert_eq "delay --json says source bpf" "bpf" "$(json_eval "$SPUN" "d['source']")"
assert_eq "delay --json: the window is 3 s" "true" \
  "$(json_eval "$SPUN" "2.9e9 < d['duration_ns'] < 3.5e9")"
assert_eq "delay --json: one VM, its vCPU 0 by tid" "itest-delay-spun $SPUN_PID 0 $SPUN_TID" \
  "$(json_eval "$SPUN" "' '.join(str(x) for x in (d['vms'][0]['name'], d['vms'][0]['pid'], d['vms'][0]['vcpus'][0]['vcpu'], d['vms'][0]['vcpus'][0]['tid']))")"
SHARE=$(json_eval "$SPUN" "(lambda c: sum(b['ns'] for b in c['behind'] if b['kind'] == 'host' and b['comm'] == 'delay-spinner' and b['pid'] == $SPINNER_PID) / c['run_delay_ns'])(d['vms'][0]['vcpus'][0])")
say "share of the vCPU's delay behind delay-spinner: $SHARE"
assert_eq "at least 90% of the vCPU's delay is behind the spinning host process (got $SHARE)" \
  "true" "$(python3 -c "print('true' if $SHARE >= 0.9 else 'false')")"
check_sums "$SPUN" "spinner"
stop "$SPINNER_PID" "$SPUN_PID"

# The text: the culprit by name with its share, on one screen.
start_fake spun2 -name "guest=itest-delay-text,debug-threads=on" --threads 1 --busy
TEXT_PID=$FAKE_PID
contend "$(vcpu_tid "$TEXT_PID")"
start_background_as delay-spinner "$SPINNER"
contend "$BG_PID"
expect_vcpumap --no-libvirt delay -d 1s itest-delay-text
assert_match "text: the vCPU's delay" "$OUT" "vCPU 0 +tid [0-9]+ +waited +[0-9.]+ ms"
assert_match "text: the spinner first, by name, with its share" \
  "$(grep -A1 '^  vCPU 0 ' <<<"$OUT" | sed -n 2p)" "^ +[0-9.]+%  host +delay-spinner \\(pid $BG_PID\\)"
assert_true "text: one screen" test "$(grep -c '' <<<"$OUT")" -le 24
stop "$BG_PID" "$TEXT_PID"

# --- top: WAITED BEHIND, and key b for the whole split ------------------------------------------
start_fake top -name "guest=itest-dtop,debug-threads=on" --threads 1 --busy
TOP_PID=$FAKE_PID
TOP_TID=$(vcpu_tid "$TOP_PID")
contend "$TOP_TID"
start_background_as delay-spinner "$SPINNER"
TOP_SPINNER=$BG_PID
contend "$TOP_SPINNER"
expect_vcpumap --no-libvirt top -b -n 2 -d 1 -f itest-dtop
assert_match "top -b: the header has WAITED BEHIND" "$OUT" "%DELAY WAITED BEHIND +MIGR/S"
# The culprit's label is cut to 11 characters, then its share of the vCPU's delay.
assert_match "top -b: each interval, the vCPU waited mostly behind the spinner" \
  "$(grep -E "^itest-dtop +0 +$TOP_TID " <<<"$OUT" | tail -n1)" " delay-spinn +(9[0-9]|100)% "
expect_vcpumap --no-libvirt --json top -n 2 -d 1 -f itest-dtop
LAST=$(tail -n1 <<<"$OUT")
assert_eq "top --json: the largest culprit is the spinner, by kind, name and pid" \
  "host delay-spinner $TOP_SPINNER" \
  "$(json_eval "$LAST" "(lambda b: ' '.join(str(b[k]) for k in ('kind', 'comm', 'pid')))(next(v for v in d['vms'] if v['pid'] == $TOP_PID)['vcpus'][0]['waited_behind']['behind'][0])")"
assert_eq "top --json: the split adds up to the interval's run delay within 5%" "true" \
  "$(json_eval "$LAST" "(lambda w: abs(sum(b['ns'] for b in w['behind']) - w['run_delay_ns']) <= 0.05 * w['run_delay_ns'])(next(v for v in d['vms'] if v['pid'] == $TOP_PID)['vcpus'][0]['waited_behind'])")"
# Without BPF, top keeps working: the column says n/a, and one note says why.
run_vcpumap --no-libvirt --source procfs top -b -n 1 -d 0.5 -f itest-dtop
assert_eq "top --source procfs: exits 0" "0" "$STATUS"
assert_match "top --source procfs: WAITED BEHIND is n/a" \
  "$(grep -E "^itest-dtop +0 " <<<"$OUT")" " n/a +[0-9.]+ "
assert_eq "top --source procfs: one note says why" "1" "$(grep -c 'WAITED BEHIND is n/a' <<<"$ERR")"
run_vcpumap --no-libvirt --source procfs --json top -n 1 -d 0.5 -f itest-dtop
assert_eq "top --json --source procfs: waited_behind is null, not empty" "true" \
  "$(json_eval "$OUT" "next(v for v in d['vms'] if v['pid'] == $TOP_PID)['vcpus'][0]['waited_behind'] is None")"
if command -v tmux >/dev/null; then
  tmux_ new-session -d -s top -x 100 -y 30 \
    "'$VCPUMAP' --no-libvirt top -d 1 -f itest-dtop; echo \$? >'$TEST_TMP/top_status'"
  screen() { tmux_ capture-pane -p -t top; }
  wait_screen "delay-spinn" 8
  assert_match "screen: the WAITED BEHIND column names the spinner" "$(screen)" \
    "itest-dtop +0 +$TOP_TID .* delay-spinn +[0-9]+% "
  tmux_ send-keys -t top b
  wait_screen "who it waited behind" 3
  SCREEN=$(screen)
  assert_contains "key b: the selected vCPU's split" "$SCREEN" \
    "itest-dtop vCPU 0 (tid $TOP_TID): who it waited behind"
  assert_match "key b: the spinner by name and pid, with its share" "$SCREEN" \
    "[0-9.]+%  host +delay-spinner \\(pid $TOP_SPINNER\\)"
  tmux_ send-keys -t top x
  wait_screen "WAITED BEHIND" 3
  assert_not_contains "any key returns to the table" "$(screen)" "who it waited behind"
  tmux_ send-keys -t top q
  for ((i = 0; i < 30; i++)); do [[ -s "$TEST_TMP/top_status" ]] && break; sleep 0.1; done
  assert_eq "screen: q exits 0" "0" "$(cat "$TEST_TMP/top_status" 2>/dev/null)"
else
  say "tmux is not installed: top's full screen is not checked"
fi
stop "$TOP_SPINNER" "$TOP_PID"

# --- two VMs' vCPUs on one CPU -------------------------------------------------------------------
start_fake left -name "guest=itest-delay-left,debug-threads=on" --threads 1 --busy
LEFT_PID=$FAKE_PID
start_fake right -name "guest=itest-delay-right,debug-threads=on" --threads 1 --busy
RIGHT_PID=$FAKE_PID
contend "$(vcpu_tid "$LEFT_PID")"
contend "$(vcpu_tid "$RIGHT_PID")"
expect_vcpumap --no-libvirt --json delay -d 3s itest-delay-left itest-delay-right
TWO=$OUT
assert_eq "two VMs: both are measured" "itest-delay-left,itest-delay-right" \
  "$(json_eval "$TWO" "[v['name'] for v in d['vms']]")"
# each_other DOC FIELD LABEL: left's and right's vCPU 0 each have the other's vCPU 0 first in
# FIELD (behind, ran_beside) of `delay --json` output DOC.
each_other() {
  local doc=$1 field=$2 label=$3 pair me other other_pid
  for pair in "left right $RIGHT_PID" "right left $LEFT_PID"; do
    read -r me other other_pid <<<"$pair"
    assert_eq "$label: $me's vCPU 0 has $other's vCPU 0 first in $field" \
      "vcpu itest-delay-$other $other_pid 0" \
      "$(json_eval "$doc" "(lambda b: ' '.join(str(b.get(k)) for k in ('kind', 'vm', 'pid', 'vcpu')))(next(v for v in d['vms'] if v['name'] == 'itest-delay-$me')['vcpus'][0]['$field'][0])")"
  done
}
each_other "$TWO" behind "two VMs"
check_sums "$TWO" "two VMs"

# --- ran_beside: what ran on the vCPU's SMT sibling -------------------------------------------
# This host's own topology: without SMT, ran_beside is null (unknown), never 0, and says why.
if [[ "$(cat /sys/devices/system/cpu/cpu*/topology/thread_siblings_list | sort -u | tr -d '0-9\n')" == "" ]]; then
  assert_eq "no SMT here: every vCPU's ran_beside is null" "true" \
    "$(json_eval "$TWO" "all(c['ran_beside'] is None for v in d['vms'] for c in v['vcpus'])")"
  assert_contains "no SMT here: delay says why" \
    "$(json_eval "$TWO" "d['ran_beside_unavailable']")" "this host has no SMT"
fi
VCPUMAP_DELAY_SIBLINGS=x run_vcpumap --no-libvirt delay -d 10ms itest-delay-left
assert_eq "a bad VCPUMAP_DELAY_SIBLINGS is bad input" "2" "$STATUS"
assert_contains "a bad VCPUMAP_DELAY_SIBLINGS is named" "$ERR" "VCPUMAP_DELAY_SIBLINGS='x'"
# The kernel's side, on CPUs 0 and 1 taken as one core's siblings (VCPUMAP_DELAY_SIBLINGS): two
# VMs' busy vCPUs, one on each, ran beside each other, the same time seen from either side. With
# the test cgroup's weight on both CPUs the rest of the machine (vcpumap included) gets little:
# the window is short, and left goes back to share $CPU with right at once.
pin_to "$(vcpu_tid "$LEFT_PID")" 0
pin_to "$(vcpu_tid "$RIGHT_PID")" 1
OUT=$(VCPUMAP_DELAY_SIBLINGS=0-1 "$VCPUMAP" --no-libvirt --json delay -d 2s itest-delay-left \
  itest-delay-right 2>"$TEST_TMP/beside.err") || fatal "delay with forced siblings: $(<"$TEST_TMP/beside.err")"
BESIDE=$OUT
pin_to "$(vcpu_tid "$LEFT_PID")" "$CPU"
pin_to "$(vcpu_tid "$RIGHT_PID")" "$CPU"
assert_eq "forced siblings: ran_beside is measured" "null" "$(json_eval "$BESIDE" "d['ran_beside_unavailable']")"
each_other "$BESIDE" ran_beside "forced siblings"
# Both busy, each with a CPU of its own and the test cgroup's weight: side by side most of the
# window, and each stretch counted once for each of the two.
SIDE=$(json_eval "$BESIDE" "' '.join(str(next(v for v in d['vms'] if v['name'] == n)['vcpus'][0]['ran_beside'][0]['ns']) for n in ('itest-delay-left', 'itest-delay-right')) + ' ' + str(d['duration_ns'])")
say "ran beside (left, right, window ns): $SIDE"
assert_eq "forced siblings: side by side for over half the window, the same from both sides" "true" \
  "$(python3 -c "import sys; l, r, w = map(int, sys.argv[1:]); print('true' if l > 0.5 * w and abs(l - r) <= 0.05 * max(l, r) else 'false')" $SIDE)"

# --- serve: the same split as a counter, top 5 culprits per vCPU plus other ----------------------
# metrics URL: /metrics of an exporter started here, as plain text.
metrics() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"; }
# start_exporter LOG ARGS...: `vcpumap serve` on a free loopback port; sets EXPORTER, EXPORTER_PID.
start_exporter() {
  local log=$1 i
  shift
  start_background "$VCPUMAP" --no-libvirt "$@" serve --listen 127.0.0.1:0 2>"$log"
  EXPORTER_PID=$BG_PID
  for ((i = 0; i < 200; i++)); do grep -q 'listening on' "$log" && break; sleep 0.05; done
  EXPORTER=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n1)
  [[ -n "$EXPORTER" ]] || fatal "vcpumap serve did not start: $(<"$log")"
}
start_exporter "$TEST_TMP/serve.log"
metrics "$EXPORTER/metrics" >/dev/null  # the first scrape starts the split
# Bounded wait for the split to show the other VM's vCPU (it keeps counting while both spin).
for ((i = 0; i < 50; i++)); do
  SCRAPE=$(metrics "$EXPORTER/metrics")
  grep -q 'vm="itest-delay-left",uuid="",vcpu="0",culprit_kind="vcpu",culprit="itest-delay-right:vcpu0"} [1-9]' <<<"$SCRAPE" && break
  sleep 0.2
done
assert_match "serve: left's vCPU 0 waited behind right's vCPU 0, in seconds" "$SCRAPE" \
  'vcpumap_vcpu_waited_behind_seconds_total\{vm="itest-delay-left",uuid="",vcpu="0",culprit_kind="vcpu",culprit="itest-delay-right:vcpu0"\} [0-9.e+-]+'
SERIES=$(grep -c '^vcpumap_vcpu_waited_behind_seconds_total{vm="itest-delay-left",uuid="",vcpu="0",' <<<"$SCRAPE")
assert_true "serve: at most 5 culprits plus other per vCPU (got $SERIES)" test "$SERIES" -le 6
assert_contains "serve: other is one of them" "$SCRAPE" \
  'vcpumap_vcpu_waited_behind_seconds_total{vm="itest-delay-left",uuid="",vcpu="0",culprit_kind="other",culprit="other"}'
stop "$EXPORTER_PID"
# ran_beside in the exporter: absent with the reason on a host without SMT; on CPUs 0 and 1 taken
# as siblings, left's vCPU on one and right's on the other, each ran beside the other.
if [[ "$(cat /sys/devices/system/cpu/cpu*/topology/thread_siblings_list | sort -u | tr -d '0-9\n')" == "" ]]; then
  assert_not_contains "serve without SMT: no ran_beside series" "$SCRAPE" "vcpumap_vcpu_ran_beside"
  assert_contains "serve without SMT: says once why" "$(<"$TEST_TMP/serve.log")" \
    "vcpumap_vcpu_ran_beside_seconds_total is not served: this host has no SMT"
fi
pin_to "$(vcpu_tid "$LEFT_PID")" 0
pin_to "$(vcpu_tid "$RIGHT_PID")" 1
export VCPUMAP_DELAY_SIBLINGS=0-1
start_exporter "$TEST_TMP/serve-siblings.log"
unset VCPUMAP_DELAY_SIBLINGS
metrics "$EXPORTER/metrics" >/dev/null
BESIDE_SERIES='vcpumap_vcpu_ran_beside_seconds_total{vm="itest-delay-left",uuid="",vcpu="0",culprit_kind="vcpu",culprit="itest-delay-right:vcpu0"}'
for ((i = 0; i < 50; i++)); do
  SCRAPE=$(metrics "$EXPORTER/metrics")
  grep -qF "$BESIDE_SERIES" <<<"$SCRAPE" && [[ "$(grep -F "$BESIDE_SERIES" <<<"$SCRAPE" | cut -d' ' -f2)" != 0 ]] && break
  sleep 0.2
done
pin_to "$(vcpu_tid "$LEFT_PID")" "$CPU"
pin_to "$(vcpu_tid "$RIGHT_PID")" "$CPU"
assert_eq "serve, forced siblings: left's vCPU 0 ran beside right's vCPU 0 for some seconds" "true" \
  "$(grep -F "$BESIDE_SERIES" <<<"$SCRAPE" | python3 -c 'import sys; l = sys.stdin.read().split(); print("true" if l and float(l[-1]) > 0 else "false")')"
SERIES=$(grep -c '^vcpumap_vcpu_ran_beside_seconds_total{vm="itest-delay-left",uuid="",vcpu="0",' <<<"$SCRAPE")
assert_true "serve: ran_beside at most 5 culprits plus other per vCPU (got $SERIES)" test "$SERIES" -le 6
assert_not_contains "serve, forced siblings: no note that ran_beside is missing" \
  "$(<"$TEST_TMP/serve-siblings.log")" "ran_beside_seconds_total is not served"
stop "$EXPORTER_PID"
start_exporter "$TEST_TMP/serve-procfs.log" --source procfs
SCRAPE=$(metrics "$EXPORTER/metrics")
assert_contains "serve without BPF still serves" "$SCRAPE" "vcpumap_vcpu_run_delay_seconds_total"
assert_not_contains "serve without BPF has no split" "$SCRAPE" "vcpumap_vcpu_waited_behind"
assert_contains "serve without BPF says why" "$(<"$TEST_TMP/serve-procfs.log")" \
  "vcpumap_vcpu_waited_behind_seconds_total is not served: it needs BPF"
stop "$EXPORTER_PID"
stop "$LEFT_PID" "$RIGHT_PID"

# --- report splits a recording as the kernel splits it live --------------------------------------
# A busy vCPU waits behind three spinning host processes and a second VM's vCPU that wakes every
# 2 ms and runs 0.2 ms: the second watched thread that runs and sleeps while the first still
# waits is the case the exact recording must keep the switches of. `delay` (the kernel's split)
# and `record --exact` then `report` (the split worked out from the ring's events) watch the
# same 3 s: each culprit's share of the busy vCPU's delay agrees within 3 points.
start_fake busy -name "guest=itest-delay-busy,debug-threads=on" --threads 1 --busy
BUSY_PID=$FAKE_PID
contend "$(vcpu_tid "$BUSY_PID")"
start_fake bursty -name "guest=itest-delay-bursty,debug-threads=on" --threads 1 --bursty
BURSTY_PID=$FAKE_PID
contend "$(vcpu_tid "$BURSTY_PID")"
SPINNERS=()
for _ in 1 2 3; do
  start_background_as delay-spinner "$SPINNER"
  SPINNERS+=("$BG_PID")
  contend "$BG_PID"
done
start_background "$VCPUMAP" --no-libvirt --json delay -d 3s itest-delay-busy itest-delay-bursty \
  >"$TEST_TMP/split-delay.json"
DELAY_PID=$BG_PID
expect_vcpumap --no-libvirt record --exact -d 3s -o "$TEST_TMP/split.rec" itest-delay-busy \
  itest-delay-bursty
wait "$DELAY_PID"
assert_eq "beside record --exact, delay exits 0" "0" "$?"
expect_vcpumap --no-libvirt --json report "$TEST_TMP/split.rec"
while read -r row; do
  [[ -n "$row" ]] && assert_eq "report and delay: ${row#* }" "ok" "${row%% *}"
done < <(python3 - "$(<"$TEST_TMP/split-delay.json")" "$OUT" "${SPINNERS[@]}" <<'PYEND'
import json, sys
live, recorded = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def busy(vms, key):
    vcpu = next(vm for vm in vms if vm["name"] == "itest-delay-busy")["vcpus"][0]
    return vcpu[key] if key else vcpu
def shares(vcpu):
    total = vcpu["run_delay_ns"]
    return {b.get("vm") or "pid %s" % b.get("pid"): b["ns"] / total for b in vcpu["behind"]}
a, b = shares(busy(live["vms"], None)), shares(busy(recorded["vms"], "delay"))
for name in ["pid " + pid for pid in sys.argv[3:]] + ["itest-delay-bursty"]:
    x, y = a.get(name, 0), b.get(name, 0)
    print("ok" if x > 0.02 and abs(x - y) <= 0.03 else "bad",
          "%s's share of the busy vCPU's delay: %.1f%% live, %.1f%% recorded" % (name, 100 * x, 100 * y))
PYEND
)
say "the busy vCPU's split as recorded: $(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
c = next(v for v in d["vms"] if v["name"] == "itest-delay-busy")["vcpus"][0]["delay"]
print(", ".join("%s %.0f%%" % (b.get("vm") or ("%s %s" % (b["comm"], b["pid"]) if "comm" in b else b["kind"]), 100 * b["ns"] / c["run_delay_ns"]) for b in c["behind"][:5]))' "$OUT")"
stop "${SPINNERS[@]}" "$BUSY_PID" "$BURSTY_PID"
