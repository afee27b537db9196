#!/usr/bin/env bash
# Hostile VM and thread names, with fake guests (tests/tools/fake_guest: a process named
# qemu-system-x86_64 whose threads are named like QEMU's): VM names with spaces, ')', '"', '\',
# a newline and the byte \xff; threads whose names look like vCPUs but are not exactly
# "CPU <n>/KVM". vcpumap must exit 0, print valid JSON, count only the real vCPUs and print
# every name escaped on one line.
# Usage: bash tests/integration/test_hostile_names.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_fake_guest "${2:-}"

# The hostile VM name: spaces, ')', '"', '\', a newline and \xff.
HOSTILE_NAME=$'itest hostile) "vm" \\ x\nnext\xffend'
# Thread names that look like vCPUs or hold odd bytes; none is a vCPU. (comm keeps 15 bytes.)
LOOKALIKES=(
  $'CPU 0/KVM\n'
  $' CPU 1/KVM'
  $'CPU 1/KVM '
  'CPU 01/KVM'
  'CPU -1/KVM'
  'CPU 2/KVMX'
  'CPU 3/kvm'
  'CPU /KVM'
  $'a) b\n c\xff'
  $'))) ("x")\\'
)
hostile_args=()
for name in "${LOOKALIKES[@]}"; do hostile_args+=(--name-thread "$name"); done

start_fake hostile -name "guest=$HOSTILE_NAME,debug-threads=on" --threads 2 --iothread \
  "${hostile_args[@]}"
HOSTILE=$FAKE_PID
# Only look-alikes: no vCPU at all.
start_fake lookalikes -name guest=itest-lookalikes,debug-threads=on --threads 0 "${hostile_args[@]}"
LOOKALIKE=$FAKE_PID
# QEMU's ',,' stands for a comma in the name.
start_fake comma -name 'guest=itest-comma,,name,debug-threads=on' --threads 1
COMMA=$FAKE_PID
say "fake guests: hostile pid $HOSTILE, look-alikes pid $LOOKALIKE, comma pid $COMMA"

# The tids of the real vCPU threads (comm exactly "CPU n/KVM").
REAL_VCPUS="$(thread_tid "$HOSTILE" "CPU 0/KVM"),$(thread_tid "$HOSTILE" "CPU 1/KVM")"
[[ "$REAL_VCPUS" =~ ^[0-9]+,[0-9]+$ ]] || fatal "fake guest's vCPU threads not found: $REAL_VCPUS"

# --- list --------------------------------------------------------------------------------------

expect_vcpumap list --json
LIST=$OUT
assert_true "list --json is valid JSON (strict UTF-8)" json_valid "$(cat "$OUT_FILE")"
assert_eq "hostile guest: vCPU tids are exactly the 'CPU n/KVM' threads" "$REAL_VCPUS" \
  "$(vm_eval "$LIST" "$HOSTILE" "[t['tid'] for t in v['vcpus']]")"
assert_eq "hostile guest: vCPU numbers" "0,1" "$(vm_eval "$LIST" "$HOSTILE" "[t['vcpu'] for t in v['vcpus']]")"
assert_eq "hostile guest: iothread io1" "io1" "$(vm_eval "$LIST" "$HOSTILE" "[t['id'] for t in v['iothreads']]")"
assert_eq "hostile guest: name (\\xff replaced)" \
  "$(printf '%s' "$HOSTILE_NAME" | python3 -c 'import sys; print(ascii(sys.stdin.buffer.read().decode("utf-8", "replace")))')" \
  "$(vm_eval "$LIST" "$HOSTILE" "ascii(v['name'])")"
assert_eq "look-alikes guest: no vCPUs" "0" "$(vm_eval "$LIST" "$LOOKALIKE" "len(v['vcpus'])")"
assert_eq "comma guest: name with ',,' unescaped" "itest-comma,name" "$(vm_eval "$LIST" "$COMMA" "v['name']")"
assert_eq "comma guest: 1 vCPU" "1" "$(vm_eval "$LIST" "$COMMA" "len(v['vcpus'])")"

expect_vcpumap list
# The VM heading is one line; each table row starts with its vCPU number.
heading=$(grep -E "  pid $HOSTILE  " <<<"$OUT")
assert_match "list: the hostile guest's heading is one line starting 'VM '" "$heading" "^VM .+  pid $HOSTILE  "
assert_not_contains "list: no raw newline from the name" "$OUT" $'x\nnext'
assert_not_contains "list: no raw \\xff byte" "$OUT" $'\xff'
python3 - "$OUT_FILE" "$HOSTILE" <<'EOF' || fail "list: every line of the hostile guest's block is a known kind of line" "$(cat "$OUT_FILE")"
import re, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8", "replace").split("\n")
start = next(i for i, l in enumerate(lines) if f"  pid {sys.argv[2]}  " in l)
rows = 0
for line in lines[start + 1:]:
    if line == "" or line.startswith("VM "):
        break
    if re.match(r"  VCPU  ", line) or line.startswith("  emulator:") or line.startswith("  iothread "):
        continue
    if re.match(r"  \d+ +\d+ +\d+ ", line):
        rows += 1
        continue
    print(f"unexpected line: {line!r}")
    sys.exit(1)
if rows != 2:
    print(f"expected 2 vCPU rows, got {rows}")
    sys.exit(1)
EOF
CHECKS=$((CHECKS + 1))

# --- threads -----------------------------------------------------------------------------------

for pid in "$HOSTILE" "$LOOKALIKE"; do
  expect_vcpumap threads "$pid" --json
  assert_true "threads $pid --json is valid JSON" json_valid "$(cat "$OUT_FILE")"
  THREADS=$OUT
  tasks=$(find /proc/"$pid"/task -mindepth 1 -maxdepth 1 | wc -l)
  assert_eq "threads $pid --json: one entry per thread" "$tasks" "$(json_eval "$THREADS" "len(d['threads'])")"
  # Each look-alike is there by its exact name (the kernel keeps 15 bytes), and not a vCPU.
  printf '%s\0' "${LOOKALIKES[@]}" >"$TEST_TMP/lookalikes"
  python3 - "$TEST_TMP/lookalikes" "$OUT_FILE" <<'EOF' || fail "threads $pid --json: every look-alike is listed by its name and is not a vCPU"
import json, sys
names = [n[:15].decode("utf-8", "replace") for n in open(sys.argv[1], "rb").read().split(b"\0")[:-1]]
threads = json.loads(open(sys.argv[2], "rb").read())["threads"]
bad = 0
for name in names:
    roles = [t["role"] for t in threads if t["name"] == name]
    if roles != ["emulator"]:
        print(f"thread {name!r}: roles {roles}, expected ['emulator']")
        bad += 1
sys.exit(1 if bad else 0)
EOF
  CHECKS=$((CHECKS + 1))
  expect_vcpumap threads "$pid"
  # Every row of the table starts with a tid: a raw newline in a name would break a row in two.
  python3 - "$OUT_FILE" "$tasks" <<'EOF' || fail "threads $pid: one line per thread, names escaped" "$(cat "$OUT_FILE")"
import re, sys
data = open(sys.argv[1], "rb").read()
if b"\xff" in data:
    print("raw \\xff byte in the output"); sys.exit(1)
lines = data.decode("utf-8").split("\n")
rows = []
for line in lines[2:]:
    if line == "":
        break
    if not re.match(r"\d+  ", line):
        print(f"not a row: {line!r}"); sys.exit(1)
    rows.append(line)
if len(rows) != int(sys.argv[2]):
    print(f"expected {sys.argv[2]} rows, got {len(rows)}"); sys.exit(1)
EOF
  CHECKS=$((CHECKS + 1))
done
assert_contains "threads (text): a name with a newline is shown escaped" "$OUT" 'CPU 0/KVM\n'

# --- naming the hostile VM ----------------------------------------------------------------------

expect_vcpumap vcpuinfo "$HOSTILE_NAME"
assert_eq "vcpuinfo by the hostile name: 2 vCPUs" "2" "$(grep -c '^VCPU:' <<<"$OUT")"
expect_vcpumap vcpuinfo "$HOSTILE"
assert_eq "vcpuinfo by pid: 2 vCPUs" "2" "$(grep -c '^VCPU:' <<<"$OUT")"
expect_vcpumap vcpuinfo itest-comma,name --json
assert_eq "vcpuinfo itest-comma,name: 1 vCPU" "1" "$(json_eval "$OUT" "len(d['vcpus'])")"
for command in vcpupin emulatorpin iothreadinfo; do
  expect_vcpumap "$command" "$HOSTILE" --json && assert_true "$command --json is valid JSON" json_valid "$OUT"
done
expect_vcpumap topology --json
assert_true "topology --json is valid JSON" json_valid "$OUT"

# --- fake_guest --guests: many busy guests, all ended by one SIGTERM to the parent -------------

start_background "$FAKE_GUEST" --guests 2 --threads 2 --busy -name guest=itest-load \
  >"$TEST_TMP/load.out"
PARENT=$BG_PID
for ((i = 0; i < 100; i++)); do
  [[ $(grep -c '' "$TEST_TMP/load.out") -ge 2 ]] && break
  sleep 0.05
done
mapfile -t CHILDREN <"$TEST_TMP/load.out"
assert_eq "fake_guest --guests 2 prints 2 pids" "2" "${#CHILDREN[@]}"
for child in "${CHILDREN[@]}"; do wait_vcpu_threads "$child" 2 5 || true; done
expect_vcpumap list --json
for i in 0 1; do
  assert_eq "fake_guest --guests: itest-load-$i has 2 vCPUs" "2" \
    "$(json_eval "$OUT" "[len(v['vcpus']) for v in d['vms'] if v['name'] == 'itest-load-$i']")"
done
assert_eq "fake_guest --guests: the parent is not listed as a VM" "0" \
  "$(json_eval "$OUT" "sum(1 for v in d['vms'] if v['pid'] == $PARENT)")"
assert_true "fake_guest --busy: a vCPU thread spins" spins "$(vcpu_tid "${CHILDREN[0]}" 0)" 1
kill -TERM "$PARENT"
wait "$PARENT"
assert_eq "fake_guest --guests: parent exits 0 on SIGTERM" "0" "$?"
sleep 0.2
for child in "${CHILDREN[@]}"; do
  state=$(thread_stat_field "$child" 3 2>/dev/null)
  assert_in "fake_guest --guests: child $child is gone with its parent" "${state:-gone}" gone Z
done
