# shellcheck shell=bash
# Throwaway QEMU TCG guests and helper processes, for the integration tests and `make demo`.
# Source it from bash; it defines functions and sets no shell options.
#
#   guests_init                     make a temp dir ($GUESTS_TMP), trap EXIT/INT/TERM to clean up
#   start_guest LABEL [qemu args]   start a daemonized QEMU TCG guest, sets $GUEST_PID
#   start_background CMD...         start a helper process in the background, sets $BG_PID
#   make_spin_disk FILE             a 512-byte boot sector that spins: `jmp $` (EB FE) ... 55 AA
#   wait_vcpu_threads PID N         wait until threads `CPU 0/…` … `CPU N-1/…` exist
#   thread_tid PID NAME             tid of the thread whose comm is exactly NAME
#   thread_stat_field TID N         field N of /proc/TID/stat (39: last CPU, 14: utime)
#   stop_started                    stop every process started here (the traps call it)
#
# Only processes started through these functions are ever signalled, by PID, and only while
# their start time still matches the one seen at start (so a reused PID is never hit).

GUESTS_TMP=${GUESTS_TMP:-}
GUEST_PID=
BG_PID=
declare -ga GUESTS_STARTED=()     # "pid:starttime" of each process started here

guests_init() {
  GUESTS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vcpumap-guests.XXXXXX") || return 1
  trap 'guests_on_exit' EXIT
  trap 'guests_on_signal 130' INT
  trap 'guests_on_signal 143' TERM
}

guests_on_exit() {
  local status=$?
  stop_started
  [[ -n "$GUESTS_TMP" && -d "$GUESTS_TMP" ]] && rm -rf -- "$GUESTS_TMP"
  # A hook for the sourcing script (lib.sh turns recorded failures into exit status 1).
  if declare -F guests_exit_hook >/dev/null; then guests_exit_hook "$status"; fi
  exit "$status"
}

guests_on_signal() {
  trap - INT TERM
  echo "interrupted: stopping the guests started here" >&2
  exit "$1"  # runs the EXIT trap
}

# Field N (1-based, as in proc(5)) of thread TID's stat. The name (field 2) may hold spaces, ')'
# and newlines: the fields after it start after the LAST ')'. Read from /proc/TID/task/TID/stat:
# /proc/TID/stat sums utime and stime over the whole process.
thread_stat_field() {
  local tid=$1 field=$2 stat rest
  stat=$(tr '\n' ' ' <"/proc/$tid/task/$tid/stat" 2>/dev/null) || return 1
  [[ -n "$stat" ]] || return 1
  rest=${stat##*) }
  local -a fields
  read -r -a fields <<<"$rest"
  ((field >= 3)) || return 1
  echo "${fields[field - 3]}"
}

process_start_time() { thread_stat_field "$1" 22; }

remember_started() {
  local pid=$1 start
  start=$(process_start_time "$pid") || start=unknown
  GUESTS_STARTED+=("$pid:$start")
}

# Still the process we started (same PID and same start time)?
started_alive() {
  local entry=$1 pid start now
  pid=${entry%%:*}
  start=${entry#*:}
  now=$(process_start_time "$pid" 2>/dev/null) || return 1
  # A process already gone when it was recorded (start time unknown) is never signalled.
  [[ "$start" != unknown && "$now" == "$start" ]]
}

stop_started() {
  local entry pid i
  for entry in "${GUESTS_STARTED[@]}"; do
    started_alive "$entry" && kill -TERM "${entry%%:*}" 2>/dev/null
  done
  for entry in "${GUESTS_STARTED[@]}"; do
    pid=${entry%%:*}
    for ((i = 0; i < 100; i++)); do  # up to 10 s
      started_alive "$entry" || break
      # A zombie child of ours: reap it.
      [[ "$(thread_stat_field "$pid" 3 2>/dev/null)" == Z ]] && { wait "$pid" 2>/dev/null; break; }
      sleep 0.1
    done
    if started_alive "$entry" && [[ "$(thread_stat_field "$pid" 3 2>/dev/null)" != Z ]]; then
      echo "process $pid did not stop on SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
      sleep 0.2
    fi
    wait "$pid" 2>/dev/null  # reaps background children; harmless for daemonized QEMU
  done
  GUESTS_STARTED=()
}

# make_spin_disk FILE: a raw 512-byte boot sector whose code is `jmp $` (EB FE), padded with
# zeros and ending in the boot signature 55 AA. SeaBIOS boots it and vCPU 0 spins for ever.
make_spin_disk() {
  local file=$1
  {
    printf '\353\376'
    head -c 508 /dev/zero
    printf '\125\252'
  } >"$file"
  [[ $(stat -c %s "$file") -eq 512 ]]
}

# start_guest LABEL [qemu args...]: starts a daemonized QEMU TCG guest with 64 MiB, no display
# and no default devices; `-name guest=LABEL,debug-threads=on` is added unless the args have
# their own -name. Sets GUEST_PID. QEMU's messages go to $GUESTS_TMP/LABEL.log.
start_guest() {
  local label=$1
  shift
  local pidfile="$GUESTS_TMP/$label.pid" log="$GUESTS_TMP/$label.log"
  # shellcheck disable=SC2054  # the commas are QEMU's
  local -a args=(-machine pc,accel=tcg -m 64 -display none -daemonize -pidfile "$pidfile"
    -nodefaults)
  local arg has_name=0
  for arg in "$@"; do [[ "$arg" == -name ]] && has_name=1; done
  ((has_name)) || args+=(-name "guest=$label,debug-threads=on")
  rm -f -- "$pidfile"
  if ! qemu-system-x86_64 "${args[@]}" "$@" >"$log" 2>&1 </dev/null; then
    echo "qemu-system-x86_64 failed to start guest $label:" >&2
    cat "$log" >&2
    return 1
  fi
  # With -daemonize, QEMU returns once the pidfile is written and the guest is set up.
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$pidfile" ]] && break
    sleep 0.1
  done
  GUEST_PID=$(<"$pidfile") || return 1
  remember_started "$GUEST_PID"
}

# start_background CMD...: runs CMD in the background; sets BG_PID.
# start_background_as ARGV0 PROGRAM ARGS...: the same with another argv[0] (bash's exec -a).
start_background() {
  "$@" &
  BG_PID=$!
  remember_started "$BG_PID"
}

start_background_as() {
  local argv0=$1
  shift
  (exec -a "$argv0" "$@") &
  BG_PID=$!
  remember_started "$BG_PID"
}

# thread_tid PID NAME: the tid of PID's thread whose comm is exactly NAME (empty when none).
thread_tid() {
  local pid=$1 name=$2 comm
  for comm in /proc/"$pid"/task/*/comm; do
    if cmp -s -- "$comm" <(printf '%s\n' "$name"); then
      comm=${comm%/comm}
      echo "${comm##*/}"
      return 0
    fi
  done
  return 1
}

# wait_vcpu_threads PID N [TIMEOUT_S]: waits until threads named `CPU k/<accel>` for k in
# 0..N-1 exist in process PID.
wait_vcpu_threads() {
  local pid=$1 count=$2 timeout=${3:-20} k found i
  for ((i = 0; i < timeout * 10; i++)); do
    found=0
    for ((k = 0; k < count; k++)); do
      grep -qxE "CPU $k/(KVM|TCG|HVF|WHPX|NVMM)" /proc/"$pid"/task/*/comm 2>/dev/null &&
        found=$((found + 1))
    done
    ((found == count)) && return 0
    sleep 0.1
  done
  echo "process $pid: only $found of $count vCPU threads appeared in ${timeout}s" >&2
  return 1
}

# vcpu_tid PID K: tid of QEMU's vCPU K thread (`CPU K/TCG` or /KVM ...).
vcpu_tid() {
  local pid=$1 k=$2 accel tid
  for accel in TCG KVM HVF WHPX NVMM; do
    tid=$(thread_tid "$pid" "CPU $k/$accel") && { echo "$tid"; return 0; }
  done
  return 1
}

# thread_cpu_ticks TID: utime + stime ticks of a thread.
thread_cpu_ticks() {
  local utime stime
  utime=$(thread_stat_field "$1" 14) && stime=$(thread_stat_field "$1" 15) &&
    echo $((utime + stime))
}

# spins TID [SECONDS]: true when the thread burns CPU (its utime+stime grows by at least a
# quarter of the interval).
spins() {
  local tid=$1 seconds=${2:-1} before after hz
  hz=$(getconf CLK_TCK)
  before=$(thread_cpu_ticks "$tid") || return 1
  sleep "$seconds"
  after=$(thread_cpu_ticks "$tid") || return 1
  ((after - before >= hz * seconds / 4))
}
