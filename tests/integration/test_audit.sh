#!/usr/bin/env bash
# vcpumap audit against a real libvirtd running TCG domains (issue 7): a well-pinned domain gives
# no finding; domains built to break one rule each give that rule, with a fix that works; exit
# statuses follow --fail-on. Starts libvirtd only if it is not running and stops only what it
# started (scripts/libvirt-env.sh); touches only its own domains (vcpumap-audit-*). Other VMs on
# the host (another test's) may add findings: checks look at findings about our domains only.
source "$(dirname "$0")/lib.sh"

command -v virsh >/dev/null && command -v libvirtd >/dev/null || skip "libvirt is not installed"
[[ $(id -u) -eq 0 ]] || skip "needs root to start libvirtd"
(($(nproc) >= 2)) || skip "needs 2 host CPUs"

DOMAINS_DIR="$TESTS_DIR/integration/libvirt/audit-domains"
OURS=(vcpumap-audit-clean vcpumap-audit-share-a vcpumap-audit-share-b vcpumap-audit-emu
  vcpumap-audit-float)
OURS_PY="{$(printf "'%s'," "${OURS[@]}")}"

libvirt_domains_setup "$DOMAINS_DIR" "${OURS[@]}"

# ours_eval JSON PY_EXPR: json_eval over the findings whose every VM is one of ours, as `f`.
ours_eval() {
  json_eval "$1" "(lambda f: $2)([x for x in d['findings'] if set(x['vms']) <= $OURS_PY])"
}
# rule_of JSON RULE VM PY_EXPR: PY_EXPR of the first finding of RULE whose fix is for VM, as `x`.
rule_of() {
  json_eval "$1" "(lambda x: $4)(next(x for x in d['findings'] if x['rule'] == '$2' and x['vm'] == '$3'))"
}
vcpu_tid_of() {  # DOMAIN VCPU
  run_vcpumap list --json
  json_eval "$OUT" "next(c['tid'] for v in d['vms'] if v['name'] == '$1' for c in v['vcpus'] if c['vcpu'] == $2)"
}

# --- a well-pinned domain, alone of ours: nothing to say ------------------------------------
"${VIRSH[@]}" start vcpumap-audit-clean >/dev/null || fatal "cannot start vcpumap-audit-clean"
run_vcpumap audit vcpumap-audit-clean --json
assert_eq "the clean domain: exit 0" "0" "$STATUS"
assert_true "audit --json is valid JSON" json_valid "$OUT"
assert_eq "the clean domain: no finding among our domains" "" "$(ours_eval "$OUT" "[x['rule'] for x in f]")"
foreign=$(json_eval "$OUT" "len(d['findings'])")
[[ $foreign == 0 ]] || say "note: $foreign finding(s) caused by VMs not started by this test"
run_vcpumap audit vcpumap-audit-clean --fail-on info
if [[ $foreign == 0 ]]; then
  assert_eq "the clean domain: --fail-on info exits 0" "0" "$STATUS"
  assert_contains "the clean domain: text says so" "$OUT" "no findings in 1 VM"
fi
"${VIRSH[@]}" destroy vcpumap-audit-clean >/dev/null

# --- domains that break one rule each -------------------------------------------------------
for name in vcpumap-audit-share-a vcpumap-audit-share-b vcpumap-audit-emu vcpumap-audit-float; do
  "${VIRSH[@]}" start "$name" >/dev/null || fatal "cannot start $name"
done
run_vcpumap audit --json
assert_eq "errors found: exit 1" "1" "$STATUS"
ALL=$OUT

# shared-pcpu: both pin vCPU 0 to CPU 1 alone.
assert_eq "shared-pcpu is an error" "error" \
  "$(ours_eval "$ALL" "next(x['severity'] for x in f if x['rule'] == 'shared-pcpu' and 1 in x['cpus'])")"
assert_eq "shared-pcpu names both domains" "vcpumap-audit-share-a,vcpumap-audit-share-b" \
  "$(ours_eval "$ALL" "sorted(next(x['vms'] for x in f if x['rule'] == 'shared-pcpu' and 1 in x['cpus']))")"
assert_eq "shared-pcpu names both vCPU threads" \
  "$(vcpu_tid_of vcpumap-audit-share-a 0),$(vcpu_tid_of vcpumap-audit-share-b 0)" \
  "$(ours_eval "$ALL" "sorted(t['tid'] for t in next(x['threads'] for x in f if x['rule'] == 'shared-pcpu' and 1 in x['cpus']))")"

# emulator-on-vcpu-cpu: -emu's emulator threads may run on CPU 0, where its vCPU is pinned.
assert_eq "emulator-on-vcpu-cpu for -emu" "warning" \
  "$(rule_of "$ALL" emulator-on-vcpu-cpu vcpumap-audit-emu "x['severity']")"
assert_eq "emulator-on-vcpu-cpu involves CPU 0" "true" \
  "$(rule_of "$ALL" emulator-on-vcpu-cpu vcpumap-audit-emu "0 in x['cpus']")"
assert_contains "emulator-on-vcpu-cpu says why" \
  "$(rule_of "$ALL" emulator-on-vcpu-cpu vcpumap-audit-emu "x['message']")" "take time from"

# floating-vcpu: -float's unpinned vCPUs may run on CPU 1, held by -share-a and -share-b.
assert_eq "floating-vcpu for -float" "0,1" \
  "$(rule_of "$ALL" floating-vcpu vcpumap-audit-float "sorted(t['vcpu'] for t in x['threads'] if t['vm'] == 'vcpumap-audit-float')")"
assert_eq "floating-vcpu involves CPU 1" "true" \
  "$(rule_of "$ALL" floating-vcpu vcpumap-audit-float "1 in x['cpus']")"

# Named VMs select findings; only warnings about -float, so exit 0 unless --fail-on warning.
run_vcpumap audit vcpumap-audit-float --json
assert_eq "only findings involving -float" "" \
  "$(json_eval "$OUT" "[x['rule'] for x in d['findings'] if 'vcpumap-audit-float' not in x['vms']]")"
assert_eq "warnings alone: exit 0" "0" "$STATUS"
run_vcpumap audit vcpumap-audit-float --fail-on warning
assert_eq "--fail-on warning: exit 1" "1" "$STATUS"
assert_contains "text names the rule" "$OUT" "floating-vcpu  vcpumap-audit-float"
assert_match "text gives a summary line" "$OUT" "[0-9]+ findings? \\([0-9]+ warnings?\\) in 1 VM"

# Without libvirt the enforced layer alone still shows the shared CPU.
run_vcpumap --no-libvirt audit vcpumap-audit-share-a --json
assert_eq "--no-libvirt: shared-pcpu from affinity alone" "error" \
  "$(ours_eval "$OUT" "next(x['severity'] for x in f if x['rule'] == 'shared-pcpu')")"

# pin-drift: libvirt's vCPU cgroup stops taskset (EINVAL outside its cpuset), as it stops any
# tool; loosen the cgroup as a careless tool would, then move the vCPU off its pin.
TID=$(vcpu_tid_of vcpumap-audit-share-b 0)
CGROUP=$(awk -F: '$2 == "cpuset" || ($1 == "0" && $2 == "") { print $3; exit }' "/proc/$TID/cgroup")
if taskset -pc 0 "$TID" >/dev/null 2>&1; then
  say "taskset moved the vCPU without touching its cgroup"
else
  for dir in "/sys/fs/cgroup/cpuset$CGROUP" "/sys/fs/cgroup/unified$CGROUP" "/sys/fs/cgroup$CGROUP"; do
    [[ -w $dir/cpuset.cpus ]] && echo 0-1 >"$dir/cpuset.cpus" && break
  done
  taskset -pc 0 "$TID" >/dev/null || fatal "cannot move vCPU 0 of vcpumap-audit-share-b to CPU 0"
fi
run_vcpumap audit vcpumap-audit-share-b --json
DRIFT=$OUT
assert_eq "pin-drift is an error" "error" "$(rule_of "$DRIFT" pin-drift vcpumap-audit-share-b "x['severity']")"
assert_contains "pin-drift says what libvirt configures" \
  "$(rule_of "$DRIFT" pin-drift vcpumap-audit-share-b "x['message']")" "may run on CPU 0"
FIX=$(rule_of "$DRIFT" pin-drift vcpumap-audit-share-b "x['fix']")
assert_eq "pin-drift's fix" "vcpumap vcpupin vcpumap-audit-share-b 0 1 --live --config" "$FIX"
# The fix works: run it (as vcpumap, the binary under test) and audit again.
# shellcheck disable=SC2086  # the fix is words
run_vcpumap ${FIX#vcpumap }
assert_eq "the fix runs" "0" "$STATUS"
run_vcpumap audit vcpumap-audit-share-b --json
assert_eq "after the fix: no pin-drift" "" \
  "$(json_eval "$OUT" "[x['rule'] for x in d['findings'] if x['rule'] == 'pin-drift']")"
assert_eq "after the fix: the vCPU is back on CPU 1" "1" "$(cpu_list_of "$TID")"

# --watch: samples for the time asked, then reports what it saw.
start=$(date +%s%N)
run_vcpumap audit --watch 1 vcpumap-audit-float --json
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
assert_true "--watch 1 takes about a second ($elapsed_ms ms)" test "$elapsed_ms" -ge 1000 -a "$elapsed_ms" -lt 6000
assert_true "--watch --json is valid JSON" json_valid "$OUT"
assert_eq "--watch: floating-vcpu still found" "warning" \
  "$(rule_of "$OUT" floating-vcpu vcpumap-audit-float "x['severity']")"

# The audit could not run: exit 2 and one line saying why.
for args in "audit nosuch-domain" "audit --fail-on fatal" "audit --watch soon"; do
  # shellcheck disable=SC2086  # the words are the arguments
  run_vcpumap $args
  assert_eq "vcpumap $args exits 2" "2" "$STATUS"
  assert_eq "vcpumap $args says why in one line" "1" "$(printf '%s\n' "$ERR" | grep -c .)"
done

# --watch follows libvirt through the watcher top and serve use: a vcpupin --live made during the
# watch is judged at its end (share-b moved from CPU 1, shared with -share-a, to CPU 0, shared with
# -emu), and its event has only that domain described again: no listing after the first.
start_background env VCPUMAP_DEBUG_LIBVIRT_CALLS=1 "$VCPUMAP" audit --watch 8 vcpumap-audit-share-b \
  --json >"$TEST_TMP/watch.json" 2>"$TEST_TMP/watch.err"
WATCH_PID=$BG_PID
for ((i = 0; i < 300; i++)); do grep -qs 'at the first look' "$TEST_TMP/watch.err" && break; sleep 0.05; done
grep -qs 'at the first look' "$TEST_TMP/watch.err" ||
  fatal "audit --watch did not report its first look: $(cat "$TEST_TMP/watch.err")"
"${VIRSH[@]}" vcpupin --live vcpumap-audit-share-b 0 0 >/dev/null || fatal "cannot re-pin -share-b"
wait "$WATCH_PID"
WATCHED=$(<"$TEST_TMP/watch.json")
assert_true "--watch after a re-pin: valid JSON" json_valid "$WATCHED"
assert_eq "--watch: the re-pinned vCPU shares CPU 0 with -emu at the end" "vcpumap-audit-emu,vcpumap-audit-share-b" \
  "$(json_eval "$WATCHED" "sorted(set(next(x['vms'] for x in d['findings'] if x['rule'] == 'shared-pcpu' and 0 in x['cpus'] and 'vcpumap-audit-share-b' in x['vms'])) & $OURS_PY)")"
assert_eq "--watch: libvirt's pinning followed, so no pin-drift" "" \
  "$(json_eval "$WATCHED" "[x['rule'] for x in d['findings'] if x['rule'] == 'pin-drift']")"
end_line=$(grep 'libvirt at the end' "$TEST_TMP/watch.err")
assert_contains "--watch: the re-pin cost no listing of every domain ($end_line)" "$end_line" " 1 listings"
