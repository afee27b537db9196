#!/usr/bin/env bash
# Changing affinity of VMs libvirt does not manage (sched_setaffinity), on a fake guest
# (tests/tools/fake_guest) and a real QEMU TCG guest with an I/O thread:
#   vcpupin VM VCPU CPULIST, emulatorpin VM CPULIST, iothreadpin VM ID CPULIST, and "r" to undo;
#   each change is what /proc/TID/status and `taskset -pc` then show, and only the threads of that
#   role change; every bad input exits non-zero with one line on stderr and changes no thread.
# Usage: bash tests/integration/test_pin_procfs.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in taskset ps; do command -v "$tool" >/dev/null || skip "$tool is not installed"; done
# The checks pin to CPUs 0 and 1, both allowed to this script.
allowed=$(cpu_list_of $$)
[[ ",$allowed," == *",0,"* && ",$allowed," == *",1,"* ]] ||
  skip "needs host CPUs 0 and 1 (allowed here: $allowed)"
ALL_CPUS=$(</sys/devices/system/cpu/online)

find_fake_guest "${2:-}"

# allowed_list TID: Cpus_allowed_list of /proc/TID/status ("0-1").
allowed_list() {
  local line
  line=$(grep '^Cpus_allowed_list:' "/proc/$1/status" 2>/dev/null) || return 1
  echo "${line##*[[:space:]]}"
}

# affinities PID: one "tid list" line for each thread of PID.
affinities() {
  local task
  for task in /proc/"$1"/task/*; do echo "${task##*/} $(allowed_list "${task##*/}")"; done
}

# others_lists PID TID...: "list" of each thread of PID except the TIDs (they are checked apart).
others_lists() {
  local pid=$1 task tid skip
  shift
  for task in /proc/"$pid"/task/*; do
    tid=${task##*/}
    skip=0
    for other in "$@"; do [[ "$tid" == "$other" ]] && skip=1; done
    ((skip)) || echo "$tid $(allowed_list "$tid")"
  done
}

# expect_pinned WHAT TID LIST: /proc and taskset agree that thread TID may run on LIST.
expect_pinned() {
  assert_eq "$1: Cpus_allowed_list of thread $2" "$3" "$(allowed_list "$2")"
  # taskset prints "0,1" where /proc says "0-1": compare both as CPU numbers.
  assert_eq "$1: taskset -pc $2" "$(expand_list "$3")" "$(cpu_list_of "$2")"
}

# expand_list LIST: a kernel CPU list as comma-separated CPU numbers ("0-2,5" -> "0,1,2,5").
expand_list() {
  local part cpu cpus=() parts=()
  IFS=, read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do
    for ((cpu = ${part%-*}; cpu <= ${part#*-}; cpu++)); do cpus+=("$cpu"); done
  done
  local IFS=,
  echo "${cpus[*]}"
}

# expect_refused VM ARGS...: vcpumap ARGS exits non-zero with one stderr line and every thread
# of process VM keeps its affinity.
expect_refused() {
  local pid=$1 before after
  shift
  before=$(affinities "$pid")
  run_vcpumap "$@"
  after=$(affinities "$pid")
  CHECKS=$((CHECKS + 1))
  if ((STATUS == 0)); then
    fail "vcpumap $* is refused" "exit status 0" "stdout: $OUT"
  else
    pass "vcpumap $* is refused"
  fi
  assert_eq "vcpumap $*: one line on stderr" "1" "$(grep -c '' <<<"$ERR")"
  assert_match "vcpumap $*: the line starts 'vcpumap: '" "$ERR" '^vcpumap: '
  assert_eq "vcpumap $*: no thread changed" "$before" "$after"
}

# check_guest LABEL PID VCPU1_TID IOTHREAD_ID IOTHREAD_TID: the pin commands on one guest.
check_guest() {
  local label=$1 pid=$2 vcpu1=$3 io_id=$4 io_tid=$5 others
  local vcpu0
  vcpu0=$(vcpu_tid "$pid" 0)

  # vcpupin VM 1 1: vCPU 1 only.
  others=$(others_lists "$pid" "$vcpu1")
  expect_vcpumap vcpupin "$label" 1 1 &&
    assert_eq "$label: vcpupin 1 1 prints vCPU 1's row read back" \
      $' VCPU   CPU Affinity\n----------------------\n 1      1' "$OUT"
  expect_pinned "$label: vcpupin 1 1" "$vcpu1" 1
  assert_eq "$label: vcpupin 1 1 changed no other thread" "$others" "$(others_lists "$pid" "$vcpu1")"
  expect_vcpumap vcpupin "$label" 1
  assert_eq "$label: vcpupin VM 1 shows that row" \
    $' VCPU   CPU Affinity\n----------------------\n 1      1' "$OUT"
  expect_vcpumap vcpupin "$label" 1 r
  expect_pinned "$label: vcpupin 1 r" "$vcpu1" "$ALL_CPUS"
  # virsh's syntax, and --live and --current both mean the running threads here.
  expect_vcpumap vcpupin "$label" 0 0-1,^1 --live
  expect_pinned "$label: vcpupin 0 0-1,^1 --live" "$vcpu0" 0
  expect_vcpumap --json vcpupin "$label" 0 1 --current &&
    assert_eq "$label: vcpupin --json reads back vCPU 0 on [1]" "0:1" \
      "$(json_eval "$OUT" "[f\"{r['vcpu']}:{','.join(map(str, r['affinity']))}\" for r in d['vcpus']]")"
  expect_pinned "$label: vcpupin 0 1 --current" "$vcpu0" 1

  # emulatorpin VM 0: every thread that is not a vCPU or an I/O thread.
  local vcpus_io before_vcpus task tid
  vcpus_io=$(for ((k = 0; ; k++)); do vcpu_tid "$pid" "$k" || break; done; echo "$io_tid")
  before_vcpus=$(for tid in $vcpus_io; do echo "$tid $(allowed_list "$tid")"; done)
  expect_vcpumap emulatorpin "$label" 0 &&
    assert_eq "$label: emulatorpin 0 prints the emulator's pinning read back" \
      $'emulator: CPU Affinity\n----------------------------------\n       *: 0' "$OUT"
  for task in /proc/"$pid"/task/*; do
    tid=${task##*/}
    grep -qx "$tid" <<<"$vcpus_io" && continue
    expect_pinned "$label: emulatorpin 0, thread '$(cat "$task/comm" 2>/dev/null)'" "$tid" 0
  done
  assert_eq "$label: emulatorpin left vCPUs and I/O threads alone" "$before_vcpus" \
    "$(for tid in $vcpus_io; do echo "$tid $(allowed_list "$tid")"; done)"

  # iothreadpin VM ID 1.
  others=$(others_lists "$pid" "$io_tid")
  expect_vcpumap iothreadpin "$label" "$io_id" 1 &&
    assert_contains "$label: iothreadpin prints iothreadinfo read back" "$OUT" " $io_id           1"
  expect_pinned "$label: iothreadpin $io_id 1" "$io_tid" 1
  assert_eq "$label: iothreadpin changed no other thread" "$others" "$(others_lists "$pid" "$io_tid")"
  expect_vcpumap iothreadinfo "$label"
  assert_contains "$label: iothreadinfo shows the change" "$OUT" " $io_id           1"

  # Bad inputs: nothing changes.
  local bad
  for bad in 0- a 99 '^0,^1' '0,^0' '' '1-0' '0,,1'; do
    expect_refused "$pid" vcpupin "$label" 1 "$bad"
  done
  expect_refused "$pid" emulatorpin "$label" 99
  expect_refused "$pid" iothreadpin "$label" "$io_id" '^0,^1'
  expect_refused "$pid" vcpupin "$label" 9 0
  assert_contains "vcpupin $label 9 0 names the vCPUs there are" "$ERR" "has no vCPU 9; its vCPUs are 0-"
  expect_refused "$pid" vcpupin "$label" x 0
  expect_refused "$pid" iothreadpin "$label" nosuch 0
  assert_contains "iothreadpin nosuch names the I/O threads there are" "$ERR" "its I/O threads are $io_id"
  expect_refused "$pid" vcpupin itest-no-such-vm 0 0
  expect_refused "$pid" vcpupin "$label" 0 0 --config
  assert_contains "--config on a VM without libvirt says why" "$ERR" "no persistent configuration"
  expect_refused "$pid" vcpupin "$label" 0 0 --root /nonexistent
  # CLI11's own message for exclusive flags is two lines: only check that nothing changed.
  local before
  before=$(affinities "$pid")
  run_vcpumap vcpupin "$label" 0 0 --live --current
  assert_true "vcpupin --live --current is refused" test "$STATUS" -ne 0
  assert_eq "vcpupin --live --current: no thread changed" "$before" "$(affinities "$pid")"
}

# --- a fake guest --------------------------------------------------------------------------------

fake_out="$TEST_TMP/fake.out"
start_background_as qemu-system-x86_64 "$FAKE_GUEST" -name guest=itest-pin-fake,debug-threads=on \
  --threads 2 --iothread >"$fake_out"
for ((i = 0; i < 100; i++)); do
  [[ -s "$fake_out" ]] && break
  sleep 0.05
done
FAKE=$(head -n1 "$fake_out")
[[ "$FAKE" == "$BG_PID" ]] || fatal "fake_guest printed '$FAKE', started $BG_PID"
say "fake guest: pid $FAKE"
check_guest itest-pin-fake "$FAKE" "$(vcpu_tid "$FAKE" 1)" io1 "$(thread_tid "$FAKE" "IO io1")"

# --- a real QEMU TCG guest ---------------------------------------------------------------------

if ! command -v qemu-system-x86_64 >/dev/null; then
  say "qemu-system-x86_64 is not installed: QEMU part skipped"
  exit 0
fi
start_guest itest-pin-qemu -smp 2 -object iothread,id=io1 || fatal "can't start itest-pin-qemu"
QEMU=$GUEST_PID
say "QEMU guest: pid $QEMU"
wait_vcpu_threads "$QEMU" 2 || fatal "itest-pin-qemu: no vCPU threads"
QEMU_IO=$(thread_tid "$QEMU" "IO io1") || fatal "itest-pin-qemu: no thread 'IO io1'"
check_guest itest-pin-qemu "$QEMU" "$(vcpu_tid "$QEMU" 1)" io1 "$QEMU_IO"
