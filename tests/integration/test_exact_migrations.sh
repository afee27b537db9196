#!/usr/bin/env bash
# record --exact counts every migration, or says that it could not: a busy look-alike vCPU, and
# then a real QEMU TCG guest's vCPU (spinning in its boot sector), is flipped between two CPUs N
# times while it records. With the BPF event ring (the default) the
# recorded migrations equal the thread's se.nr_migrations delta, and report says the cross-check
# held. With the perf fallback (--source procfs), report gives the kernel's count whatever perf
# lost, and says by how much the events fell short when they did.
# Usage: bash tests/integration/test_exact_migrations.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
find_fake_guest "${2:-}"
((EUID == 0)) || skip "record --exact needs root"
(($(nproc) >= 2)) || skip "flipping a thread between CPUs needs two CPUs"
FLIPS=10

# nr_migrations PID TID: the thread's se.nr_migrations.
nr_migrations() { awk '$1 == "se.nr_migrations" { print $3 }' "/proc/$1/task/$2/sched"; }
# wait_on_cpu PID TID CPU: waits (bounded, 2 s) until the thread last ran on CPU.
wait_on_cpu() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ "$(ps_psr "$1" "$2")" == "$3" ]] && return 0
    sleep 0.02
  done
  fatal "thread $2 did not move to CPU $3"
}

# flip_while_recording LABEL ARGS...: records the guest $VM (pid $PID) with `record --exact ARGS`,
# flipping its vCPU $TID FLIPS times; sets DELTA (its nr_migrations delta across the flips) and
# REPORT/REPORT_TEXT.
flip_while_recording() {
  local label=$1 rec="$TEST_TMP/$1.rec" i recorder
  shift
  taskset -pc 0 "$TID" >/dev/null && wait_on_cpu "$PID" "$TID" 0
  "$VCPUMAP" --no-libvirt "$@" record --exact -o "$rec" "$VM" 2>"$TEST_TMP/$label.err" &
  recorder=$!
  remember_started "$recorder"
  for ((i = 0; i < 200; i++)); do
    [[ -s "$rec" ]] && break
    sleep 0.05
  done
  [[ -s "$rec" ]] || fatal "$label: record --exact made no file: $(<"$TEST_TMP/$label.err")"
  local before after
  before=$(nr_migrations "$PID" "$TID")
  for ((i = 1; i <= FLIPS; i++)); do
    taskset -pc $((i % 2)) "$TID" >/dev/null
    wait_on_cpu "$PID" "$TID" $((i % 2))
  done
  after=$(nr_migrations "$PID" "$TID")
  DELTA=$((after - before))
  kill -INT "$recorder"
  wait "$recorder"
  assert_eq "$label: the recorder stops cleanly on SIGINT" "0" "$?"
  expect_vcpumap --json report "$rec"
  REPORT=$OUT
  expect_vcpumap report "$rec"
  REPORT_TEXT=$OUT
}

VCPU="d['vms'][0]['vcpus'][0]"
# check_bpf LABEL: with the BPF ring, the recorded migrations equal the nr_migrations delta.
check_bpf() {
  local label=$1
  flip_while_recording "$label" --source auto
  assert_eq "$label: the test moved the thread $FLIPS times (se.nr_migrations)" "$FLIPS" "$DELTA"
  assert_eq "$label: exact migrations equal the nr_migrations delta, from the events" \
    "$FLIPS $FLIPS $FLIPS tracepoint" \
    "$(json_eval "$REPORT" "' '.join(str($VCPU[k]) for k in ('migrations', 'migration_events', 'migrations_counted', 'migrations_source'))")"
  assert_eq "$label: no event was lost" "0" "$(json_eval "$REPORT" "d['lost_events']")"
  assert_contains "$label: report says the cross-check held" "$REPORT_TEXT" \
    "migrations cross-checked: the events of all 1 vCPUs equal their se.nr_migrations deltas"
  assert_not_contains "$label: no warning" "$REPORT_TEXT" "WARNING"
}

# --- BPF ring: a real TCG guest's vCPU ----------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
make_spin_disk "$TEST_TMP/spin.img" || fatal "can't write the boot sector"
start_guest itest-flip-tcg -smp 1 -drive "file=$TEST_TMP/spin.img,format=raw,if=ide" ||
  fatal "QEMU guest did not start"
VM=itest-flip-tcg
PID=$GUEST_PID
wait_vcpu_threads "$PID" 1 || fatal "QEMU's vCPU thread did not appear"
TID=$(vcpu_tid "$PID" 0)
check_bpf tcg
kill "$PID"

# --- BPF ring: a look-alike ---------------------------------------------------------------------
start_fake flip -name "guest=itest-flip,debug-threads=on" --threads 1 --busy
VM=itest-flip
PID=$FAKE_PID
TID=$(thread_tid "$PID" "CPU 0/KVM") || fatal "no vCPU thread in fake guest $PID"
check_bpf bpf

# --- perf fallback -------------------------------------------------------------------------------
MOUNTED=""
if [[ ! -d /sys/kernel/tracing/events/sched ]]; then
  mount -t tracefs nodev /sys/kernel/tracing || skip "cannot mount tracefs for the perf fallback"
  MOUNTED=/sys/kernel/tracing
fi
eval "lib_exit_hook() $(declare -f guests_exit_hook | tail -n +2)"
guests_exit_hook() {  # unmount only what this test mounted
  [[ -n "$MOUNTED" ]] && umount "$MOUNTED"
  lib_exit_hook "$1"
}
flip_while_recording perf --source procfs
assert_contains "perf: record says the events come from perf" "$(<"$TEST_TMP/perf.err")" \
  "sched events from perf tracepoints"
EVENTS=$(json_eval "$REPORT" "$VCPU['migration_events']")
say "perf tracepoints saw $EVENTS of $DELTA migrations"
assert_eq "perf: the migrations given are the kernel's count whatever perf lost" "$DELTA $DELTA" \
  "$(json_eval "$REPORT" "' '.join(str($VCPU[k]) for k in ('migrations', 'migrations_counted'))")"
if [[ "$EVENTS" == "$DELTA" ]]; then
  assert_eq "perf: events and counter agree, so the source is the events" "tracepoint" \
    "$(json_eval "$REPORT" "$VCPU['migrations_source']")"
else
  assert_eq "perf: events fell short, so the source is the counter" "nr_migrations" \
    "$(json_eval "$REPORT" "$VCPU['migrations_source']")"
  assert_contains "perf: report says by how much the events fell short" "$REPORT_TEXT" \
    "WARNING: itest-flip vCPU 0: $EVENTS migration events but se.nr_migrations rose by $DELTA"
fi
