#!/usr/bin/env bash
# The thread-facts sources: bpf (both walkers) and procfs give the same facts for frozen fake
# guests; auto falls back to procfs for an unprivileged user and says why; procfs loses no VM
# when the open-file limit cannot keep every thread's files; doctor on this host and on a
# fixture root.
# Usage: bash tests/integration/test_sources.sh PATH/TO/vcpumap [PATH/TO/fake_guest]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
find_fake_guest "${2:-}"

FIXTURE_ROOT="$SOURCE_DIR/tests/fixtures/topology-2cpu-vm"
expect_vcpumap doctor --json
json_valid "$OUT" || fatal "doctor --json is not JSON: $OUT"
BPF_OK=$(json_eval "$OUT" "[s['available'] for s in d['sources'] if s['name'].startswith('bpf')][0]")
[[ "$BPF_OK" == true ]] || skip "BPF does not load here: $(json_eval "$OUT" "d['sources'][0]['why']")"
assert_eq "doctor: auto chooses the open-coded BPF walker here" "bpf (open-coded)" \
  "$(json_eval "$OUT" "d['chosen']")"
assert_eq "doctor: both BPF walkers and procfs are listed" "bpf (open-coded),bpf (iter/task),procfs" \
  "$(json_eval "$OUT" "[s['name'] for s in d['sources']]")"
assert_eq "doctor: BTF check holds" "true" "$(json_eval "$OUT" "[c['ok'] for c in d['checks'] if c['name'] == 'btf'][0]")"
expect_vcpumap --source procfs doctor --json
assert_eq "doctor --source procfs chooses procfs" "procfs" "$(json_eval "$OUT" "d['chosen']")"
expect_vcpumap --root "$FIXTURE_ROOT" doctor --json
assert_eq "doctor on a fixture root chooses procfs" "procfs" "$(json_eval "$OUT" "d['chosen']")"
assert_contains "doctor on a fixture root: BPF is for this machine" \
  "$(json_eval "$OUT" "d['sources'][0]['why']")" "--root names another tree"
expect_vcpumap doctor
assert_contains "doctor's text names the chosen source" "$OUT" "use: bpf (open-coded)"

# --- the same facts from every engine, for frozen guests -----------------------------------------
PIDS=()
for i in 1 2 3; do
  start_fake "frozen$i" -name "guest=itest-src-$i,debug-threads=on" --threads 4 --iothread
  PIDS+=("$FAKE_PID")
done
# Frozen (SIGSTOP: our own processes), nothing moves or runs between two reads.
for pid in "${PIDS[@]}"; do kill -STOP "$pid"; done
PID_LIST=$(IFS=,; echo "${PIDS[*]}")
# facts DOC: every thread of our guests, one line each, with the fields both engines must give.
facts() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
pids = set(int(p) for p in sys.argv[2].split(","))
for vm in sorted(d["vms"], key=lambda v: v["pid"]):
    if vm["pid"] not in pids: continue
    for t in vm["vcpus"]:
        print(vm["pid"], t["vcpu"], t["tid"], t["cpu"], t["state"], t["cpu_time_ns"],
              t["run_delay_ns"], t["timeslices"], t["migrations"], t["affinity"],
              t["voluntary_switches"], t["involuntary_switches"])
' "$1" "$PID_LIST"
}
expect_vcpumap --no-libvirt --source procfs --json list
assert_eq "procfs: list says source procfs" "procfs" "$(json_eval "$OUT" "d['source']")"
PROCFS_FACTS=$(facts "$OUT")
assert_eq "procfs: 12 vCPUs of the frozen guests" "12" "$(grep -c '' <<<"$PROCFS_FACTS")"
for walker in open-coded iter-task; do
  VCPUMAP_BPF_WALKER=$walker run_vcpumap --no-libvirt --source bpf --json list
  assert_eq "bpf ($walker): list exits 0" "0" "$STATUS"
  assert_eq "bpf ($walker): list says source bpf" "bpf" "$(json_eval "$OUT" "d['source']")"
  assert_eq "bpf ($walker): every vCPU's tid, cpu, state, times, delay, migrations, affinity" \
    "$PROCFS_FACTS" "$(facts "$OUT")"
  VCPUMAP_BPF_WALKER=$walker run_vcpumap --no-libvirt --json threads "${PIDS[0]}"
  BPF_THREADS=$(json_eval "$OUT" "[(t['tid'], t['role'], t['cpu'], t['cpu_time_ns'], t['migrations']) for t in d['threads']]")
  run_vcpumap --no-libvirt --source procfs --json threads "${PIDS[0]}"
  assert_eq "bpf ($walker): threads lists every thread with the same facts as procfs" \
    "$(json_eval "$OUT" "[(t['tid'], t['role'], t['cpu'], t['cpu_time_ns'], t['migrations']) for t in d['threads']]")" \
    "$BPF_THREADS"
done
# vcpuinfo reads stat's ticks whatever the source: the text is byte-identical.
run_vcpumap --no-libvirt --source procfs vcpuinfo "${PIDS[0]}"
PROCFS_VCPUINFO=$OUT
run_vcpumap --no-libvirt --source bpf vcpuinfo "${PIDS[0]}"
assert_eq "vcpuinfo: bpf's text is procfs' text" "$PROCFS_VCPUINFO" "$OUT"
run_vcpumap --no-libvirt --source bpf --json top -b -n 2 -d 0.2
assert_eq "top --json lines say source bpf" "bpf" "$(json_eval "$(tail -n1 <<<"$OUT")" "d['source']")"
for pid in "${PIDS[@]}"; do kill -CONT "$pid"; done

# --- unprivileged: auto falls back to procfs with one note; bpf refuses in one line ------------
if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  # A copy nobody can run, wherever the build tree is.
  install -m 0755 "$VCPUMAP" "$TEST_TMP/vcpumap"
  chmod 0755 "$TEST_TMP"
  as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$TEST_TMP/vcpumap" "$@"; }
  as_nobody --no-libvirt --json list >"$TEST_TMP/nobody.out" 2>"$TEST_TMP/nobody.err"
  assert_eq "as nobody: list exits 0" "0" "$?"
  NOBODY=$(<"$TEST_TMP/nobody.out")
  assert_eq "as nobody: auto falls back to procfs" "procfs" "$(json_eval "$NOBODY" "d['source']")"
  assert_eq "as nobody: one note on stderr" "1" "$(grep -c 'BPF not used' "$TEST_TMP/nobody.err")"
  assert_contains "as nobody: the note says what would enable BPF" "$(<"$TEST_TMP/nobody.err")" \
    "CAP_BPF"
  assert_eq "as nobody: the frozen guests' vCPUs are all there" "12" "$(facts "$NOBODY" | grep -c '')"
  as_nobody --no-libvirt --source bpf list >/dev/null 2>"$TEST_TMP/nobody.err"
  assert_eq "as nobody: --source bpf exits 1" "1" "$?"
  assert_eq "as nobody: --source bpf says why in one line" "1" "$(grep -c '' "$TEST_TMP/nobody.err")"
else
  say "no setpriv or no user nobody: the unprivileged checks are left out"
fi

# --- procfs past the open-file budget: every VM in every sample ---------------------------------
MANY=()
for i in $(seq 1 12); do
  start_fake "many$i" -name "guest=itest-many-$i,debug-threads=on" --threads 4
  MANY+=("$FAKE_PID")
done
MANY_LIST=$(IFS=,; echo "${MANY[*]}")
# 12 guests x 5 threads x 3 files = 180 descriptors; a limit of 64 keeps only some.
(ulimit -n 64 && "$VCPUMAP" --no-libvirt --source procfs --json top -b -n 6 -d 0.1 \
  >"$TEST_TMP/budget.out" 2>"$TEST_TMP/budget.err")
assert_eq "procfs under ulimit -n 64: top exits 0" "0" "$?"
COUNTS=$(python3 -c '
import json, sys
pids = set(int(p) for p in sys.argv[2].split(","))
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(sum(1 for vm in d["vms"] if vm["pid"] in pids))
' "$TEST_TMP/budget.out" "$MANY_LIST" | sort -u | tr '\n' ' ')
assert_eq "procfs under ulimit -n 64: all 12 guests in each of 6 samples" "12 " "$COUNTS"
assert_contains "procfs under ulimit -n 64: says files are opened per sample" \
  "$(<"$TEST_TMP/budget.err")" "open-file limit"
# With bpf a sampler keeps no descriptor per thread.
"$VCPUMAP" --no-libvirt --source bpf top -b -d 0.2 >/dev/null 2>&1 &
TOP=$!
remember_started "$TOP"
for ((i = 0; i < 100; i++)); do
  [[ $(ls "/proc/$TOP/fd" 2>/dev/null | wc -l) -gt 3 ]] && break
  sleep 0.05
done
sleep 0.5  # a few samples
FDS=$(ls "/proc/$TOP/fd" | wc -l)
CHECKS=$((CHECKS + 1))
if ((FDS < 40)); then pass "bpf top keeps $FDS descriptors"; else
  fail "bpf top keeps few descriptors" "it holds $FDS with $((${#MANY[@]} * 5)) threads of ours"; fi
kill "$TOP"
