#!/usr/bin/env bash
# libvirt parity and pinning against a real libvirtd running TCG domains (issue 3):
# vcpumap's show commands print what virsh prints; pin changes are what virsh and /proc then show;
# bad input changes nothing. Starts libvirtd only if it is not running, and stops only what it
# started (scripts/libvirt-env.sh); defines, starts, destroys and undefines only its own domains.
source "$(dirname "$0")/lib.sh"

command -v virsh >/dev/null && command -v libvirtd >/dev/null || skip "libvirt is not installed"
[[ $(id -u) -eq 0 ]] || skip "needs root to start libvirtd"

DOMAINS_DIR="$TESTS_DIR/integration/libvirt/domains"
OURS=(vcpumap-test-pin1 vcpumap-test-iothreads vcpumap-test-nova vcpumap-test-inactive)

libvirt_domains_setup "$DOMAINS_DIR" "${OURS[@]}"
for name in vcpumap-test-pin1 vcpumap-test-iothreads vcpumap-test-nova; do
  "${VIRSH[@]}" start "$name" >/dev/null || fatal "cannot start $name"
done

# The live CPU and the CPU time of a vCPU change between two commands; everything else must not.
mask_live() { sed -E 's/^(CPU:            )[0-9]+$/\1X/; /^CPU time:       /d'; }

compare() {  # compare WHAT VIRSH_ARGS... -- VCPUMAP_ARGS...
  local what=$1 expected got
  shift
  local virsh_args=() vcpumap_args=()
  while [[ $1 != -- ]]; do virsh_args+=("$1"); shift; done
  shift
  vcpumap_args=("$@")
  expected=$("${VIRSH[@]}" "${virsh_args[@]}" | mask_live; echo x)
  run_vcpumap "${vcpumap_args[@]}"
  got=$(mask_live <"$OUT_FILE"; echo x)
  assert_eq "$what: vcpumap ${vcpumap_args[*]} prints what virsh ${virsh_args[*]} prints" "$expected" "$got"
}

id_of() { "${VIRSH[@]}" domid "$1" | head -1; }
uuid_of() { "${VIRSH[@]}" domuuid "$1" | head -1; }

for name in vcpumap-test-pin1 vcpumap-test-iothreads vcpumap-test-nova vcpumap-test-inactive; do
  for spec in "$name" "$(uuid_of "$name")" $([[ $name == *inactive ]] || id_of "$name"); do
    compare "vcpuinfo of $name as $spec" vcpuinfo "$name" -- vcpuinfo "$spec"
    compare "vcpuinfo --pretty of $name" vcpuinfo --pretty "$name" -- vcpuinfo --pretty "$spec"
  done
  compare "vcpupin of $name" vcpupin "$name" -- vcpupin "$name"
  compare "emulatorpin of $name" emulatorpin "$name" -- emulatorpin "$name"
  compare "iothreadinfo of $name" iothreadinfo "$name" -- iothreadinfo "$name"
done
compare "vcpupin --config of the inactive domain" vcpupin --config vcpumap-test-inactive -- \
  vcpupin --config vcpumap-test-inactive

# list: ids, states, inactive domains and nova metadata.
expect_vcpumap list --json
LIST=$OUT
domain_eval() { json_eval "$LIST" "(lambda v: $2)(next(x for x in d['vms'] if x['name'] == '$1'))"; }
assert_eq "libvirt id of vcpumap-test-nova" "$(id_of vcpumap-test-nova)" "$(domain_eval vcpumap-test-nova "v['libvirt_id']")"
assert_eq "state of vcpumap-test-nova" "running" "$(domain_eval vcpumap-test-nova "v['state']")"
assert_eq "the inactive domain is listed without an id" "null" "$(domain_eval vcpumap-test-inactive "v['libvirt_id']")"
assert_eq "the inactive domain is shut off" "shut off" "$(domain_eval vcpumap-test-inactive "v['state']")"
assert_eq "nova metadata" "web-1,m1.tiny,demo-project" \
  "$(domain_eval vcpumap-test-nova "[v['nova']['name'], v['nova']['flavor'], v['nova']['project']]")"
expect_vcpumap list
assert_contains "list shows nova's instance name" "$OUT" "nova: instance web-1, flavor m1.tiny, project demo-project"
assert_contains "list shows the inactive domain" "$OUT" "VM vcpumap-test-inactive  shut off"
expect_vcpumap threads vcpumap-test-nova
assert_contains "threads shows nova's instance name" "$OUT" "nova: instance web-1"

# Without libvirt the same VMs are still found, from /proc.
expect_vcpumap --no-libvirt list --json
assert_eq "--no-libvirt: the inactive domain is not known" "" \
  "$(json_eval "$OUT" "[v['name'] for v in d['vms'] if v['name'] == 'vcpumap-test-inactive']")"
assert_eq "--no-libvirt: the running domains are found in /proc" "3" \
  "$(json_eval "$OUT" "len([v for v in d['vms'] if str(v['name']).startswith('vcpumap-test-')])")"
LIBVIRT_DEFAULT_URI=qemu:///nosuch run_vcpumap list
assert_eq "an unreachable libvirt is not fatal" "0" "$STATUS"
assert_contains "an unreachable libvirt is said once on stderr" "$ERR" "libvirt (qemu:///nosuch) cannot be reached"

# Changing pinning through libvirt: virsh and /proc agree afterwards.
vcpu_tid_of() {  # DOMAIN VCPU
  run_vcpumap list --json
  json_eval "$OUT" "next(c['tid'] for v in d['vms'] if v['name'] == '$1' for c in v['vcpus'] if c['vcpu'] == $2)"
}
expect_vcpumap vcpupin vcpumap-test-iothreads 2 1
assert_contains "vcpupin prints the result" "$OUT" " 2      1"
assert_eq "virsh sees the new pinning" " 2      1" "$("${VIRSH[@]}" vcpupin vcpumap-test-iothreads 2 | sed -n 3p)"
TID=$(vcpu_tid_of vcpumap-test-iothreads 2)
assert_eq "/proc sees the new pinning" "1" "$(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$TID/status")"
expect_vcpumap emulatorpin vcpumap-test-nova 1
assert_eq "virsh sees the new emulator pinning" "       *: 1" "$("${VIRSH[@]}" emulatorpin vcpumap-test-nova | sed -n 3p)"
expect_vcpumap iothreadpin vcpumap-test-iothreads 2 0
assert_contains "virsh sees the new iothread pinning" "$("${VIRSH[@]}" iothreadinfo vcpumap-test-iothreads)" " 2             0"
expect_vcpumap vcpupin vcpumap-test-inactive 0 0 --config
assert_eq "--config pins the inactive domain's definition" " 0      0" \
  "$("${VIRSH[@]}" vcpupin --config vcpumap-test-inactive | sed -n 3p)"

# Bad input: one line on stderr, a non-zero exit, nothing changed.
before=$("${VIRSH[@]}" vcpupin vcpumap-test-iothreads; "${VIRSH[@]}" emulatorpin vcpumap-test-iothreads; "${VIRSH[@]}" iothreadinfo vcpumap-test-iothreads)
for args in "vcpupin vcpumap-test-iothreads 0 0-" "vcpupin vcpumap-test-iothreads 0 a" \
  "vcpupin vcpumap-test-iothreads 0 99" "vcpupin vcpumap-test-iothreads 9 0" \
  "vcpupin vcpumap-test-iothreads 0 ^0" "emulatorpin vcpumap-test-iothreads 7" \
  "iothreadpin vcpumap-test-iothreads 9 0" "vcpupin nosuch-domain 0 0" "vcpupin vcpumap-test-inactive 0 0 --live"; do
  # shellcheck disable=SC2086  # the words are the arguments
  run_vcpumap $args
  assert_true "vcpumap $args fails" test "$STATUS" -ne 0
  assert_eq "vcpumap $args says why in one line" "1" "$(printf '%s\n' "$ERR" | grep -c .)"
done
after=$("${VIRSH[@]}" vcpupin vcpumap-test-iothreads; "${VIRSH[@]}" emulatorpin vcpumap-test-iothreads; "${VIRSH[@]}" iothreadinfo vcpumap-test-iothreads)
assert_eq "bad input changed nothing" "$before" "$after"
