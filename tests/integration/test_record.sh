#!/usr/bin/env bash
# `vcpumap record` and `report` on real QEMU TCG guests and a busy look-alike:
#   itest-rec-a    2 vCPUs spinning a boot sector; vCPU 0 pinned to CPU 1 with taskset
#   itest-rec-b    1 vCPU
#   itest-rec-flip fake_guest --busy with one vCPU thread whose affinity this script flips
#                  between CPU 0 and CPU 1 a known number of times while recording
# Checks: the pinned vCPU has 0 migrations and 100% residency on CPU 1; the flipped thread has at
# least as many migrations as flips (sampled) and exactly its se.nr_migrations change (exact,
# root with tracefs: mounted here when it is not, and unmounted after); a recording killed with
# -9 still reports; the HTML renders in headless Chromium with a timeline and a heat map and no
# console error.
# Usage: bash tests/integration/test_record.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FAKE_GUEST=${2:-${FAKE_GUEST:-$(dirname "$VCPUMAP")/../../tests/fake_guest}}
[[ -x "$FAKE_GUEST" ]] || skip "no fake_guest at $FAKE_GUEST (build the fake_guest target)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
command -v taskset >/dev/null || skip "taskset is not installed"
allowed=$(cpu_list_of $$)
[[ ",$allowed," == *",0,"* && ",$allowed," == *",1,"* ]] ||
  skip "needs host CPUs 0 and 1 (allowed here: $allowed)"

FLIPS=6
make_spin_disk "$TEST_TMP/spin.img" || fatal "can't write the boot sector"
start_guest itest-rec-a -smp 2 -drive "file=$TEST_TMP/spin.img,format=raw,if=ide" ||
  fatal "can't start itest-rec-a"
GUEST_A=$GUEST_PID
start_guest itest-rec-b -smp 1 || fatal "can't start itest-rec-b"
GUEST_B=$GUEST_PID
start_background_as qemu-system-x86_64 "$FAKE_GUEST" -name guest=itest-rec-flip,debug-threads=on \
  --threads 1 --busy >"$TEST_TMP/flip.pid"
FLIP=$BG_PID
wait_vcpu_threads "$GUEST_A" 2 || fatal "itest-rec-a: no vCPU threads"
wait_vcpu_threads "$GUEST_B" 1 || fatal "itest-rec-b: no vCPU threads"
for ((i = 0; i < 50; i++)); do FLIP_TID=$(thread_tid "$FLIP" "CPU 0/KVM") && break; sleep 0.1; done
[[ -n "${FLIP_TID:-}" ]] || fatal "itest-rec-flip: no vCPU thread"
PINNED_TID=$(vcpu_tid "$GUEST_A" 0) || fatal "itest-rec-a: no vCPU 0"
taskset -pc 1 "$PINNED_TID" >/dev/null || fatal "can't pin $PINNED_TID"
taskset -pc 0 "$FLIP_TID" >/dev/null || fatal "can't pin $FLIP_TID"
sleep 0.3
VMS=(itest-rec-a itest-rec-b itest-rec-flip)

nr_migrations() { awk '/^se.nr_migrations/ { print $3 }' "/proc/$FLIP/task/$1/sched"; }

# record_with_flips FILE ARGS...: records in the background while flipping the busy thread's
# affinity FLIPS times; sets MIGRATED to its se.nr_migrations change over the flips.
record_with_flips() {
  local file=$1 i before after
  shift
  "$VCPUMAP" --no-libvirt record -o "$file" "$@" "${VMS[@]}" 2>"$file.err" &
  local recorder=$!
  for ((i = 0; i < 100; i++)); do [[ -s "$file" ]] && break; sleep 0.05; done
  sleep 0.5
  before=$(nr_migrations "$FLIP_TID")
  for ((i = 1; i <= FLIPS; i++)); do
    taskset -pc $((i % 2)) "$FLIP_TID" >/dev/null
    sleep 0.25
  done
  after=$(nr_migrations "$FLIP_TID")
  MIGRATED=$((after - before))
  wait "$recorder"
  RECORD_STATUS=$?
  taskset -pc 0 "$FLIP_TID" >/dev/null
}

# check_report FILE MODE: the report's JSON against what this script did.
check_report() {
  local file=$1 mode=$2 json
  expect_vcpumap --json report "$file" || return
  json=$OUT
  assert_eq "$mode: mode" "$mode" "$(json_eval "$json" 'd["mode"]')"
  local vm_a="next(v for v in d['vms'] if v['name'] == 'itest-rec-a')"
  local vm_f="next(v for v in d['vms'] if v['name'] == 'itest-rec-flip')"
  assert_eq "$mode: pinned vCPU has 0 migrations" 0 \
    "$(json_eval "$json" "$vm_a['vcpus'][0]['migrations']")"
  assert_eq "$mode: pinned vCPU is all on CPU 1" "{'1': 1.0}" \
    "$(json_eval "$json" "$vm_a['vcpus'][0]['residency']")"
  assert_eq "$mode: pinned vCPU tid" "$PINNED_TID" "$(json_eval "$json" "$vm_a['vcpus'][0]['tid']")"
  FLIP_MIGRATIONS=$(json_eval "$json" "$vm_f['vcpus'][0]['migrations']")
  assert_true "$mode: flipped thread moved at least $FLIPS times (got $FLIP_MIGRATIONS)" \
    test "${FLIP_MIGRATIONS:-0}" -ge "$FLIPS"
  assert_eq "$mode: lost events" 0 "$(json_eval "$json" 'd["lost_events"]')"
  assert_true "$mode: duration about 4 s" \
    python3 -c "import sys; sys.exit(0 if 3.5 < $(json_eval "$json" 'd["duration_s"]') < 5 else 1)"
}

# --- sampled ---------------------------------------------------------------------------------
record_with_flips "$TEST_TMP/sampled.rec" -d 4s -i 50ms
assert_eq "sampled record exits 0" 0 "$RECORD_STATUS"
assert_contains "progress line" "$(<"$TEST_TMP/sampled.rec.err")" "(duration reached)"
check_report "$TEST_TMP/sampled.rec" sampled
expect_vcpumap report "$TEST_TMP/sampled.rec"
assert_contains "text: VM line" "$OUT" "VM itest-rec-a"
assert_match "text: timeline header" "$OUT" "time +CPU0 +CPU1"
assert_contains "text: legend" "$OUT" "= itest-rec-flip"
say "sampled: $(stat -c %s "$TEST_TMP/sampled.rec") bytes; flipped thread: $FLIP_MIGRATIONS migrations for $FLIPS flips"

# --- exact -----------------------------------------------------------------------------------
MOUNTED_TRACEFS=0
if ((EUID != 0)); then
  say "not root: exact mode not tested"
else
  if [[ ! -e /sys/kernel/tracing/events/sched/sched_switch/id &&
    ! -e /sys/kernel/debug/tracing/events/sched/sched_switch/id ]]; then
    # The perf fallback needs tracefs (the BPF event ring, the default, does not).
    run_vcpumap --no-libvirt --source procfs record --exact -d 1 -o "$TEST_TMP/none.rec"
    assert_eq "exact with perf, without tracefs, fails" 1 "$STATUS"
    assert_contains "exact with perf, without tracefs, says how to fix" "$ERR" "mount -t tracefs"
    mount -t tracefs nodev /sys/kernel/tracing && MOUNTED_TRACEFS=1
  fi
  record_with_flips "$TEST_TMP/exact.rec" -d 4s --exact
  assert_eq "exact record exits 0" 0 "$RECORD_STATUS"
  check_report "$TEST_TMP/exact.rec" exact
  assert_eq "exact: migrations equal the se.nr_migrations change" "$MIGRATED" "$FLIP_MIGRATIONS"
  say "exact: $(stat -c %s "$TEST_TMP/exact.rec") bytes; flipped thread: $FLIP_MIGRATIONS migrations, nr_migrations +$MIGRATED"
  ((MOUNTED_TRACEFS)) && umount /sys/kernel/tracing
fi

# --- a recording killed with -9 --------------------------------------------------------------
start_background "$VCPUMAP" --no-libvirt record -o "$TEST_TMP/killed.rec" -d 60 "${VMS[@]}" 2>"$TEST_TMP/killed.err"
KILLED=$BG_PID
# Killed once its file holds at least 10 samples in complete blocks, however slow this machine
# (an ASan build under load wrote 1 sample in the 2.5 s a fixed sleep gave it).
for ((i = 0; i < 60; i++)); do
  sleep 0.5
  samples=$("$VCPUMAP" --json report "$TEST_TMP/killed.rec" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])' 2>/dev/null)
  [[ "${samples:-0}" -ge 10 ]] && break
done
kill -KILL "$KILLED"
wait "$KILLED" 2>/dev/null
expect_vcpumap --json report "$TEST_TMP/killed.rec"
assert_contains "killed recording: says it was cut short" "$ERR" "cut short"
assert_true "killed recording: samples were read" test "$(json_eval "$OUT" 'd["samples"]')" -ge 10
head -c 9 "$TEST_TMP/sampled.rec" >"$TEST_TMP/header-only.rec"
run_vcpumap report "$TEST_TMP/header-only.rec"
assert_eq "a file with only a header part is refused" 2 "$STATUS"

# --- HTML in headless Chromium ---------------------------------------------------------------
expect_vcpumap report "$TEST_TMP/sampled.rec" --html "$TEST_TMP/report.html"
assert_eq "html: no external assets" "" \
  "$(grep -oE '(src|href)="https?:[^"]*"' "$TEST_TMP/report.html")"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$CHROMIUM" ]]; then
  say "chromium is not installed: HTML rendering not tested"
else
  chromium_run() {
    timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir="$(mktemp -d "$TEST_TMP/chromium.XXXXXX")" "$@" \
      "file://$TEST_TMP/report.html"
  }
  chromium_run --enable-logging=stderr --v=0 --dump-dom >"$TEST_TMP/dom.html" 2>"$TEST_TMP/chromium.log"
  DOM=$(<"$TEST_TMP/dom.html")
  assert_contains "html: timeline present" "$DOM" 'id="timeline-cpu"'
  assert_contains "html: vCPU lanes present" "$DOM" 'id="timeline-vcpu"'
  assert_contains "html: heat map present" "$DOM" 'id="heatmap"'
  assert_contains "html: timeline has bars" "$DOM" '<rect x='
  assert_eq "html: no console errors" "" \
    "$(grep -E 'Uncaught|ERROR:CONSOLE|CONSOLE\(' "$TEST_TMP/chromium.log")"
  chromium_run --screenshot="$TEST_TMP/report.png" --window-size=1400,1000 >/dev/null 2>&1
  assert_true "html: screenshot taken" test -s "$TEST_TMP/report.png"
fi
