#!/usr/bin/env bash
# Real QEMU TCG guests, checked against /proc, `ps -L`, taskset, QMP and lscpu:
#   itest-pinned   2 vCPUs, debug-threads, a spinning boot sector; vCPU 0 pinned to CPU 1 and the
#                  emulator threads to CPU 0 with taskset
#   itest-plain    4 vCPUs, debug-threads, -uuid, -object iothread,id=io1, a QMP socket
#   itest-nodebug  2 vCPUs, no debug-threads (vCPU threads all named qemu-system-x86), QMP socket
# Usage: bash tests/integration/test_qemu_guests.sh PATH/TO/vcpumap
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
for tool in taskset ps lscpu; do command -v "$tool" >/dev/null || skip "$tool is not installed"; done
[[ -r /sys/devices/system/cpu/online ]] || skip "no /sys/devices/system/cpu/online"
# The pinning checks need CPUs 0 and 1, both allowed to this script.
allowed=$(cpu_list_of $$)
[[ ",$allowed," == *",0,"* && ",$allowed," == *",1,"* ]] ||
  skip "needs host CPUs 0 and 1 (allowed here: $allowed)"

UUID=6b1f9a4e-3c2d-4e5f-8a7b-0c1d2e3f4a5b
PLAIN_QMP="$TEST_TMP/plain.qmp"
NODEBUG_QMP="$TEST_TMP/nodebug.qmp"
make_spin_disk "$TEST_TMP/spin.img" || fatal "can't write the boot sector"

start_guest itest-pinned -name guest=itest-pinned,debug-threads=on -smp 2 \
  -drive "file=$TEST_TMP/spin.img,format=raw,if=ide" || fatal "can't start itest-pinned"
PINNED=$GUEST_PID
start_guest itest-plain -name guest=itest-plain,debug-threads=on -smp 4 -uuid "$UUID" \
  -object iothread,id=io1 -qmp "unix:$PLAIN_QMP,server=on,wait=off" ||
  fatal "can't start itest-plain"
PLAIN=$GUEST_PID
start_guest itest-nodebug -name itest-nodebug -smp 2 \
  -qmp "unix:$NODEBUG_QMP,server=on,wait=off" || fatal "can't start itest-nodebug"
NODEBUG=$GUEST_PID
say "guests: itest-pinned pid $PINNED, itest-plain pid $PLAIN, itest-nodebug pid $NODEBUG"

wait_vcpu_threads "$PINNED" 2 || fatal "itest-pinned: no vCPU threads"
wait_vcpu_threads "$PLAIN" 4 || fatal "itest-plain: no vCPU threads"
thread_tid "$PLAIN" "IO io1" >/dev/null || fatal "itest-plain: no thread 'IO io1'"

# query_cpus_fast SOCKET: the vCPU thread ids QMP's query-cpus-fast gives, by cpu-index, as "a,b".
query_cpus_fast() {
  python3 - "$1" <<'EOF'
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(10)
sock.connect(sys.argv[1])
stream = sock.makefile("rw")
def answer():
    while True:
        message = json.loads(stream.readline())
        if "event" not in message:
            return message
def execute(command):
    stream.write(json.dumps({"execute": command}) + "\n")
    stream.flush()
    return answer()
answer()  # the greeting
execute("qmp_capabilities")
cpus = execute("query-cpus-fast")["return"]
print(",".join(str(c["thread-id"]) for c in sorted(cpus, key=lambda c: c["cpu-index"])))
EOF
}

# Wait for itest-nodebug's vCPU threads (QMP answers once they exist).
for ((i = 0; i < 50; i++)); do
  NODEBUG_TIDS=$(query_cpus_fast "$NODEBUG_QMP" 2>/dev/null) && [[ "$NODEBUG_TIDS" == *,* ]] && break
  sleep 0.2
done
[[ "${NODEBUG_TIDS:-}" == *,* ]] || fatal "itest-nodebug: QMP query-cpus-fast gave '${NODEBUG_TIDS:-}'"

# The spinning boot sector really makes itest-pinned's vCPU 0 burn CPU.
PIN_VCPU0=$(vcpu_tid "$PINNED" 0)
PIN_VCPU1=$(vcpu_tid "$PINNED" 1)
assert_true "itest-pinned: vCPU 0 (tid $PIN_VCPU0) spins on the boot sector's jmp \$" \
  spins "$PIN_VCPU0" 1

# Pin vCPU 0 to CPU 1, and every other thread (the emulator: main loop, call_rcu, workers...) to
# CPU 0, as libvirt's <vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/> does.
taskset -pc 1 "$PIN_VCPU0" >/dev/null || fatal "taskset -pc 1 $PIN_VCPU0 failed"
for task in /proc/"$PINNED"/task/*; do
  tid=${task##*/}
  [[ "$tid" == "$PIN_VCPU0" || "$tid" == "$PIN_VCPU1" ]] && continue
  taskset -pc 0 "$tid" >/dev/null || fatal "taskset -pc 0 $tid failed"
done
# Wait (bounded) until the spinning vCPU 0 has moved to CPU 1.
for ((i = 0; i < 50; i++)); do
  [[ "$(ps_psr "$PINNED" "$PIN_VCPU0")" == 1 ]] && break
  sleep 0.1
done

# --- list --json: all three guests, names, vCPU counts ------------------------------------------

expect_vcpumap list --json || fatal "vcpumap list --json failed"
LIST=$OUT
assert_true "list --json parses as JSON" json_valid "$LIST"
for pid in "$PINNED" "$PLAIN" "$NODEBUG"; do
  assert_eq "list --json has pid $pid" "1" "$(json_eval "$LIST" "sum(1 for v in d['vms'] if v['pid'] == $pid)")"
done
assert_eq "itest-pinned: name" "itest-pinned" "$(vm_eval "$LIST" "$PINNED" "v['name']")"
assert_eq "itest-plain: name" "itest-plain" "$(vm_eval "$LIST" "$PLAIN" "v['name']")"
assert_eq "itest-nodebug: name" "itest-nodebug" "$(vm_eval "$LIST" "$NODEBUG" "v['name']")"
assert_eq "itest-plain: uuid" "$UUID" "$(vm_eval "$LIST" "$PLAIN" "v['uuid']")"
assert_eq "itest-pinned: hypervisor" "qemu" "$(vm_eval "$LIST" "$PINNED" "v['hypervisor']")"
assert_eq "itest-pinned: vCPU count" "2" "$(vm_eval "$LIST" "$PINNED" "len(v['vcpus'])")"
assert_eq "itest-plain: vCPU count" "4" "$(vm_eval "$LIST" "$PLAIN" "len(v['vcpus'])")"
assert_eq "itest-pinned: vcpu_source" "thread-names" "$(vm_eval "$LIST" "$PINNED" "v['vcpu_source']")"

# --- each vCPU: tid, affinity -----------------------------------------------------------------

# thread_json LIST_JSON TID PY_EXPR: PY_EXPR with `t` bound to the thread TID, wherever it is
# listed (vcpus, iothreads, emulator threads).
thread_json() {
  json_eval "$1" "(lambda t: $3)(next(t for v in d['vms'] for t in v['vcpus'] + v['iothreads'] + v['emulator']['threads'] if t['tid'] == $2))"
}

check_vcpus() {  # check_vcpus NAME PID COUNT
  local name=$1 pid=$2 count=$3 k tid
  for ((k = 0; k < count; k++)); do
    tid=$(vcpu_tid "$pid" "$k")
    assert_eq "$name: vCPU $k tid is thread 'CPU $k/TCG'" "$tid" \
      "$(vm_eval "$LIST" "$pid" "v['vcpus'][$k]['tid']")"
    assert_eq "$name: vCPU $k index" "$k" "$(vm_eval "$LIST" "$pid" "v['vcpus'][$k]['vcpu']")"
    assert_eq "$name: vCPU $k affinity = taskset -pc $tid" "$(cpu_list_of "$tid")" \
      "$(thread_json "$LIST" "$tid" "t['affinity']")"
    assert_in "$name: vCPU $k state" "$(thread_json "$LIST" "$tid" "t['state']")" R S D
  done
}
check_vcpus itest-pinned "$PINNED" 2
check_vcpus itest-plain "$PLAIN" 4

assert_eq "itest-pinned: vCPU 0 cpu" "1" "$(thread_json "$LIST" "$PIN_VCPU0" "t['cpu']")"
assert_eq "itest-pinned: vCPU 0 affinity" "1" "$(thread_json "$LIST" "$PIN_VCPU0" "t['affinity']")"
assert_eq "itest-pinned: emulator affinity" "0" "$(vm_eval "$LIST" "$PINNED" "v['emulator']['affinity']")"
assert_eq "itest-pinned: every emulator thread's affinity" "0" \
  "$(vm_eval "$LIST" "$PINNED" "sorted({c for t in v['emulator']['threads'] for c in t['affinity']})")"
assert_eq "itest-pinned: main thread is an emulator thread" "emulator-main" \
  "$(thread_json "$LIST" "$PINNED" "t['role']")"
for key in cpu_time_ns run_delay_ns migrations; do
  assert_match "itest-pinned: vCPU 0 $key is a number" \
    "$(thread_json "$LIST" "$PIN_VCPU0" "t['$key']")" '^[0-9]+$'
done

# --- last CPU: vcpumap vs /proc/TID/stat field 39 vs `ps -L -o tid,psr` --------------------------
# A thread can move between two reads; for each thread, retry until /proc before, vcpumap, /proc
# after and ps all agree (up to 8 tries), else say what each gave on the last try.

check_cpus() {  # check_cpus LABEL PID TID...
  local label=$1 pid=$2
  shift 2
  local -a pending=("$@") still
  local try tid got before after psr
  local -A seen=()
  for ((try = 1; try <= 8 && ${#pending[@]} > 0; try++)); do
    local -A before_of=()
    for tid in "${pending[@]}"; do before_of[$tid]=$(thread_stat_field "$tid" 39); done
    run_vcpumap list --json
    still=()
    for tid in "${pending[@]}"; do
      after=$(thread_stat_field "$tid" 39)
      psr=$(ps_psr "$pid" "$tid")
      got=$(thread_json "$OUT" "$tid" "t['cpu']" 2>/dev/null)
      before=${before_of[$tid]}
      if [[ -n "$got" && "$got" == "$before" && "$got" == "$after" && "$got" == "$psr" ]]; then
        continue
      fi
      seen[$tid]="try $try: /proc before $before, vcpumap $got, /proc after $after, ps -L $psr"
      still+=("$tid")
    done
    pending=("${still[@]}")
  done
  for tid in "${pending[@]}"; do
    CHECKS=$((CHECKS + 1))
    fail "$label: cpu of tid $tid never agreed with /proc and ps -L" "${seen[$tid]}"
  done
  CHECKS=$((CHECKS + $# - ${#pending[@]}))
}

plain_tids=()
for k in 0 1 2 3; do plain_tids+=("$(vcpu_tid "$PLAIN" "$k")"); done
check_cpus itest-pinned "$PINNED" "$PIN_VCPU0" "$PIN_VCPU1" "$PINNED"
check_cpus itest-plain "$PLAIN" "${plain_tids[@]}" "$(thread_tid "$PLAIN" "IO io1")" "$PLAIN"

# --- I/O threads ------------------------------------------------------------------------------

IO1=$(thread_tid "$PLAIN" "IO io1")
MON=$(thread_tid "$PLAIN" "IO mon_iothread")
assert_eq "itest-plain: iothread ids" "io1" "$(vm_eval "$LIST" "$PLAIN" "[t['id'] for t in v['iothreads']]")"
assert_eq "itest-plain: iothread io1 tid (thread 'IO io1')" "$IO1" \
  "$(vm_eval "$LIST" "$PLAIN" "[t['tid'] for t in v['iothreads'] if t['id'] == 'io1']")"
assert_eq "itest-plain: iothread io1 affinity" "$(cpu_list_of "$IO1")" \
  "$(thread_json "$LIST" "$IO1" "t['affinity']")"
if [[ -n "$MON" ]]; then
  assert_eq "itest-plain: 'IO mon_iothread' (tid $MON) is not an iothread" "0" \
    "$(vm_eval "$LIST" "$PLAIN" "sum(1 for t in v['iothreads'] if t['tid'] == $MON)")"
fi
assert_eq "itest-pinned: no iothreads" "0" "$(vm_eval "$LIST" "$PINNED" "len(v['iothreads'])")"

# --- without debug-threads --------------------------------------------------------------------

assert_eq "itest-nodebug: no vCPUs without names or QMP" "0" \
  "$(vm_eval "$LIST" "$NODEBUG" "len(v['vcpus'])")"
NOTE=$(json_eval "$LIST" "[n for n in d['notes'] if 'itest-nodebug' in n]")
assert_contains "itest-nodebug: a JSON note says vCPU threads can't be told apart" "$NOTE" \
  "can't be told apart"
assert_contains "itest-nodebug: the note says debug-threads=on fixes it" "$NOTE" "debug-threads=on"

expect_vcpumap list
assert_contains "list (text): itest-nodebug is listed" "$OUT" "itest-nodebug"
assert_contains "list (text): the note about itest-nodebug is on stderr" "$ERR" \
  "can't be told apart"
assert_contains "list (text): the stderr note names debug-threads=on" "$ERR" "debug-threads=on"
assert_eq "list (text): the note is on stderr only, not stdout" "" \
  "$(grep -F "can't be told apart" <<<"$OUT")"

expect_vcpumap list --json --qmp "$NODEBUG_QMP"
QMP_LIST=$OUT
QMP_TIDS=$(query_cpus_fast "$NODEBUG_QMP")
assert_eq "itest-nodebug with --qmp: vCPU tids = QMP query-cpus-fast thread-ids" "$QMP_TIDS" \
  "$(vm_eval "$QMP_LIST" "$NODEBUG" "[t['tid'] for t in v['vcpus']]")"
assert_eq "itest-nodebug with --qmp: vcpu_source" "qmp" \
  "$(vm_eval "$QMP_LIST" "$NODEBUG" "v['vcpu_source']")"
assert_eq "itest-nodebug with --qmp: no note about it" "" \
  "$(json_eval "$QMP_LIST" "[n for n in d['notes'] if 'itest-nodebug' in n]")"
expect_vcpumap list --qmp "$NODEBUG_QMP"
assert_eq "list --qmp (text): no note about itest-nodebug on stderr" "" \
  "$(grep -F "itest-nodebug" <<<"$ERR")"
# Global options may come after the subcommand, and vcpuinfo uses QMP too.
expect_vcpumap vcpuinfo itest-nodebug --json --qmp "$NODEBUG_QMP"
assert_eq "vcpuinfo itest-nodebug --json --qmp: tids" "$QMP_TIDS" \
  "$(json_eval "$OUT" "[t['tid'] for t in d['vcpus']]")"

# --- naming a VM: by name, UUID, PID ----------------------------------------------------------

# Without the lines that change from one run to the next (CPU, CPU time).
stable_vcpuinfo() { grep -vE '^CPU( time)?:' <<<"$1"; }
expect_vcpumap vcpuinfo itest-plain
BY_NAME=$(stable_vcpuinfo "$OUT")
expect_vcpumap vcpuinfo "$UUID"
assert_eq "vcpuinfo by UUID = by name" "$BY_NAME" "$(stable_vcpuinfo "$OUT")"
expect_vcpumap vcpuinfo "$PLAIN"
assert_eq "vcpuinfo by PID = by name" "$BY_NAME" "$(stable_vcpuinfo "$OUT")"
expect_vcpumap vcpuinfo itest-plain --json
BY_NAME=$(json_eval "$OUT" "[(t['vcpu'], t['tid']) for t in d['vcpus']]")
for spec in "$UUID" "$PLAIN"; do
  expect_vcpumap vcpuinfo "$spec" --json
  assert_eq "vcpuinfo $spec --json: same vCPUs and tids as by name" "$BY_NAME" \
    "$(json_eval "$OUT" "[(t['vcpu'], t['tid']) for t in d['vcpus']]")"
done
expect_vcpumap vcpuinfo "$PINNED"
assert_eq "vcpuinfo by PID (itest-pinned) has 2 blocks" "2" "$(grep -c '^VCPU:' <<<"$OUT")"

run_vcpumap vcpuinfo itest-no-such-vm
assert_eq "vcpuinfo itest-no-such-vm: exit status" "2" "$STATUS"
assert_eq "vcpuinfo itest-no-such-vm: one stderr line" "1" "$(grep -c '' <<<"$ERR")"
assert_contains "vcpuinfo itest-no-such-vm: stderr names it" "$ERR" "itest-no-such-vm"
assert_eq "vcpuinfo itest-no-such-vm: nothing on stdout" "" "$OUT"
run_vcpumap threads itest-no-such-vm --json
assert_eq "threads itest-no-such-vm --json: exit status" "2" "$STATUS"

# --- vcpuinfo text: virsh's format --------------------------------------------------------------

# One y/- per possible host CPU, as virsh prints.
possible=$(</sys/devices/system/cpu/possible)
width=$((${possible##*[-,]} + 1))
yn_of() {  # yn_of CPULIST(comma-separated)
  local list=",$1," out='' c
  for ((c = 0; c < width; c++)); do
    if [[ "$list" == *",$c,"* ]]; then out+=y; else out+=-; fi
  done
  echo "$out"
}
ticks_before=$(thread_cpu_ticks "$PIN_VCPU0")
expect_vcpumap vcpuinfo itest-pinned
ticks_after=$(thread_cpu_ticks "$PIN_VCPU0")
python3 - "$OUT_FILE" "$(yn_of 1)" "$(yn_of "$(cpu_list_of "$PIN_VCPU1")")" <<'EOF' ||
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
affinities = sys.argv[2:]
blocks = text.split("\n\n")
problems = []
if not text.endswith("\n\n"):
    problems.append("output does not end with a blank line after the last block")
blocks = [b for b in blocks if b]
if len(blocks) != 2:
    problems.append(f"expected 2 blocks separated by blank lines, got {len(blocks)}")
for vcpu, block in enumerate(blocks[:2]):
    lines = block.split("\n")
    expected = [rf"VCPU:           {vcpu}", r"CPU:            \d+", r"State:          running",
                r"(CPU time:       \d+\.\d+s)?", rf"CPU Affinity:   {re.escape(affinities[vcpu])}"]
    if len(lines) == 4:
        expected.pop(3)  # the CPU time line is left out when it is 0
    if len(lines) != len(expected) or not all(re.fullmatch(e, l) for e, l in zip(expected, lines)):
        problems.append(f"block {vcpu}: expected lines {expected}, got {lines}")
if blocks and "\nCPU:            1\n" not in blocks[0]:
    problems.append("vCPU 0 (pinned to CPU 1) is not shown on CPU 1")
if "CPU time:" not in blocks[0]:
    problems.append("vCPU 0 spins, yet has no CPU time line")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
  fail "vcpuinfo itest-pinned: virsh's format" "$(cat "$OUT_FILE")"
CHECKS=$((CHECKS + 1))
# vCPU 0's CPU time is (utime+stime) ticks as seconds, read between the two readings of /proc.
shown=$(grep -m1 '^CPU time:' "$OUT_FILE" | awk '{print $3}')
hz=$(getconf CLK_TCK)
assert_true "vcpuinfo itest-pinned: vCPU 0 CPU time $shown within (utime+stime) before/after: $ticks_before..$ticks_after ticks" \
  python3 -c "import sys; s = float('${shown%s}'); sys.exit(0 if $ticks_before / $hz - 0.05 <= s <= $ticks_after / $hz + 0.05 else 1)"

expect_vcpumap vcpuinfo itest-pinned --pretty
assert_contains "vcpuinfo --pretty: vCPU 0 affinity" "$OUT" "CPU Affinity:   1 (out of $width)"
assert_eq "vcpuinfo --pretty: 2 blocks" "2" "$(grep -c '^CPU Affinity:   .* (out of [0-9]*)$' <<<"$OUT")"

expect_vcpumap emulatorpin itest-pinned
assert_match "emulatorpin itest-pinned shows '*: 0'" "$OUT" $'\\*: 0(\n|$)'
expect_vcpumap vcpupin itest-pinned --json
assert_eq "vcpupin itest-pinned --json: vCPU 0 affinity" "1" \
  "$(json_eval "$OUT" "[r['affinity'] for r in d['vcpus'] if r['vcpu'] == 0][0]")"
expect_vcpumap iothreadinfo itest-plain
assert_contains "iothreadinfo itest-plain lists io1" "$OUT" "io1"
assert_not_contains "iothreadinfo itest-plain does not list mon_iothread" "$OUT" "mon_iothread"

# --- threads itest-plain: roles, and the main thread's CPU vs `ps -o psr` ------------------------

# threads_rows TEXT: the table rows as "TID<TAB>NAME<TAB>ROLE<TAB>CPU" (columns are 2+ spaces apart).
threads_rows() {
  python3 -c '
import re, sys
lines = sys.argv[1].split("\n")
header = re.split(r"\s{2,}", lines[1].strip())
for line in lines[2:]:
    if not line.strip():
        break
    cells = re.split(r"\s{2,}", line.strip())
    row = dict(zip(header, cells))
    print("\t".join([row.get("TID", ""), row.get("NAME", ""), row.get("ROLE", ""), row.get("CPU", "")]))
' "$1"
}
role_of() { awk -F'\t' -v t="$2" '$1 == t { print $3 }' <<<"$1"; }
cpu_col_of() { awk -F'\t' -v t="$2" '$1 == t { print $4 }' <<<"$1"; }

expect_vcpumap threads itest-plain
ROWS=$(threads_rows "$OUT")
for k in 0 1 2 3; do
  assert_eq "threads itest-plain: role of 'CPU $k/TCG'" "vcpu $k" "$(role_of "$ROWS" "$(vcpu_tid "$PLAIN" "$k")")"
done
assert_eq "threads itest-plain: role of 'IO io1'" "iothread io1" "$(role_of "$ROWS" "$IO1")"
assert_eq "threads itest-plain: role of the main thread" "emulator (main loop)" "$(role_of "$ROWS" "$PLAIN")"
assert_eq "threads itest-plain: role of 'IO mon_iothread'" "emulator (monitor)" "$(role_of "$ROWS" "$MON")"
assert_eq "threads itest-plain: one row per thread" \
  "$(find /proc/"$PLAIN"/task -mindepth 1 -maxdepth 1 | sort)" \
  "$(cut -f1 <<<"$ROWS" | sed "s|^|/proc/$PLAIN/task/|" | sort)"
# The note's puzzle: `ps -o psr -p PID` shows the main thread's CPU. Retry if it moves meanwhile.
for ((try = 1; try <= 8; try++)); do
  psr_before=$(ps -o psr= -p "$PLAIN" | tr -d ' ')
  run_vcpumap threads itest-plain
  main_cpu=$(cpu_col_of "$(threads_rows "$OUT")" "$PLAIN")
  psr_after=$(ps -o psr= -p "$PLAIN" | tr -d ' ')
  [[ "$main_cpu" == "$psr_before" && "$main_cpu" == "$psr_after" ]] && break
done
assert_eq "threads itest-plain: main thread's CPU column = ps -o psr -p PID (try $try)" \
  "$psr_after" "$main_cpu"

expect_vcpumap threads itest-plain --json
THREADS=$OUT
assert_true "threads --json parses" json_valid "$THREADS"
assert_eq "threads --json: vm pid" "$PLAIN" "$(json_eval "$THREADS" "d['vm']['pid']")"
assert_eq "threads --json: role of IO io1" "iothread" \
  "$(json_eval "$THREADS" "[t['role'] for t in d['threads'] if t['tid'] == $IO1]")"
assert_eq "threads --json: vCPU roles" "vcpu,vcpu,vcpu,vcpu" \
  "$(json_eval "$THREADS" "[t['role'] for t in d['threads'] if t['name'].startswith('CPU ')]")"

# --- topology --json vs lscpu -p=CPU,CORE,SOCKET,NODE ---------------------------------------------

expect_vcpumap topology --json
TOPOLOGY=$OUT
LSCPU=$(lscpu -p=CPU,CORE,SOCKET,NODE | grep -v '^#')
python3 - "$TOPOLOGY" "$LSCPU" <<'EOF' || fail "topology --json agrees with lscpu -p=CPU,CORE,SOCKET,NODE" "$(cat "$TEST_TMP/topology.diff")"
import json, sys
topology = json.loads(sys.argv[1])
problems = []
online = {c["cpu"]: c for c in topology["cpus"] if c.get("online", True)}
lscpu = {}
for line in sys.argv[2].splitlines():
    cpu, core, socket, node = line.split(",")
    lscpu[int(cpu)] = (int(core), int(socket), int(node) if node else 0)
if sorted(online) != sorted(lscpu):
    problems.append(f"online CPUs: vcpumap {sorted(online)}, lscpu {sorted(lscpu)}")
for cpu, (core, socket, node) in lscpu.items():
    c = online.get(cpu)
    if c and (c["core"], c["package"], c["node"]) != (core, socket, node):
        problems.append(f"CPU {cpu}: vcpumap core/package/node {c['core']}/{c['package']}/{c['node']},"
                        f" lscpu {core}/{socket}/{node}")
if topology["packages"] != len({s for _, s, _ in lscpu.values()}):
    problems.append(f"packages: {topology['packages']} vs lscpu sockets {len({s for _, s, _ in lscpu.values()})}")
if topology["cores"] != len({(s, c) for c, s, _ in lscpu.values()}):
    problems.append(f"cores: {topology['cores']} vs lscpu {len({(s, c) for c, s, _ in lscpu.values()})}")
if topology["numa_nodes"] != len({n for _, _, n in lscpu.values()}):
    problems.append(f"numa_nodes: {topology['numa_nodes']} vs lscpu {len({n for _, _, n in lscpu.values()})}")
for cpu, c in online.items():
    siblings = sorted(x for x, v in lscpu.items() if v[:2] == lscpu[cpu][:2])
    if sorted(c["siblings"]) != siblings:
        problems.append(f"CPU {cpu}: siblings {c['siblings']} vs lscpu's same core {siblings}")
import os
open(os.environ["TEST_TMP"] + "/topology.diff", "w").write("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
CHECKS=$((CHECKS + 1))
vendor=$(lscpu | sed -n 's/^Hypervisor vendor: *//p')
assert_eq "topology --json: hypervisor_vendor = lscpu's" "${vendor:-null}" \
  "$(json_eval "$TOPOLOGY" "d['hypervisor_vendor']")"

# A host without libvirt's library (a Firecracker or cloud-hypervisor host): vcpumap still lists
# the guests, and asking for libvirt says what to install. The library is hidden in a private
# mount namespace, so nothing outside this check sees it gone.
LIBVIRT_SO=$(readlink -f /usr/lib/x86_64-linux-gnu/libvirt.so.0 2>/dev/null || true)
if [[ "${VCPUMAP_SANITIZED:-}" == 1 ]]; then
  say "sanitizer build: it links libvirt (see src/sources/CMakeLists.txt); run without libvirt0 not tested"
elif ((EUID == 0)) && [[ -f "$LIBVIRT_SO" ]] && command -v unshare >/dev/null; then
  without_libvirt() {
    unshare -m bash -c 'mount --bind /dev/null "$1" && shift && exec "$@"' _ "$LIBVIRT_SO" \
      "$VCPUMAP" "$@" >"$TEST_TMP/nolibvirt.out" 2>"$TEST_TMP/nolibvirt.err"
  }
  without_libvirt --json list
  assert_eq "without libvirt0: list exits 0" 0 "$?"
  assert_eq "without libvirt0: the guests are listed" 3 \
    "$(json_eval "$(<"$TEST_TMP/nolibvirt.out")" 'len([v for v in d["vms"] if v["name"] and v["name"].startswith("itest-")])')"
  without_libvirt --connect qemu:///system list
  assert_contains "without libvirt0: --connect says what to install" \
    "$(<"$TEST_TMP/nolibvirt.err")" "install libvirt0"
else
  say "not root or no libvirt.so.0: the run without libvirt's library is not tested"
fi

# The guests are still the ones we started (nothing above killed them).
for pid in "$PINNED" "$PLAIN" "$NODEBUG"; do
  assert_true "guest pid $pid still running" kill -0 "$pid"
done
