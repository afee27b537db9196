#!/usr/bin/env bash
# `make demo`: boots two throwaway QEMU TCG guests like the note's host and shows what vcpumap
# says about them, then stops them (also on Ctrl-C). Usage: scripts/demo.sh PATH/TO/vcpumap
#   demo-pinned  2 vCPUs; vCPU 0 pinned to CPU 1, the emulator threads to CPU 0 (taskset)
#   demo-float   4 vCPUs, unpinned
# Both boot a 512-byte boot sector that spins (`jmp $`), so their vCPU 0 burns CPU.
set -uo pipefail

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=guests.sh
source "$SCRIPTS_DIR/guests.sh"

BINARY=${1:-}
if [[ -z "$BINARY" || ! -x "$BINARY" ]]; then
  echo "usage: $0 PATH/TO/vcpumap (build it first: make build)" >&2
  exit 2
fi
BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
for tool in qemu-system-x86_64 python3 taskset ps; do
  if ! command -v "$tool" >/dev/null; then
    echo "demo: $tool is missing; run scripts/install-deps.sh test (as root)" >&2
    exit 1
  fi
done

vcpumap() { "$BINARY" "$@"; }
heading() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
if [[ ! -t 1 ]]; then heading() { printf '\n==> %s\n' "$*"; }; fi
die() {
  echo "demo: $*" >&2
  exit 1
}

# json_of JSON PY_EXPR: PY_EXPR over the parsed JSON `d`, printed (lists space-separated).
json_of() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
r = eval(sys.argv[2])
print(" ".join(map(str, r)) if isinstance(r, list) else r)' "$1" "$2"
}

guests_init || die "can't make a temp dir"
# One boot disk each: QEMU locks its image.
for guest in demo-pinned demo-float; do
  make_spin_disk "$GUESTS_TMP/$guest.img" || die "can't write the boot sector"
done
disk() { echo "file=$GUESTS_TMP/$1.img,format=raw,if=ide"; }

heading "booting two throwaway QEMU TCG guests: demo-pinned (2 vCPUs), demo-float (4 vCPUs)"
start_guest demo-pinned -name guest=demo-pinned,debug-threads=on -smp 2 -drive "$(disk demo-pinned)" ||
  die "can't start demo-pinned"
PINNED=$GUEST_PID
start_guest demo-float -name guest=demo-float,debug-threads=on -smp 4 -drive "$(disk demo-float)" ||
  die "can't start demo-float"
FLOAT=$GUEST_PID
if ! wait_vcpu_threads "$PINNED" 2 || ! wait_vcpu_threads "$FLOAT" 4; then
  die "the guests' vCPU threads did not appear"
fi
echo "demo-pinned: pid $PINNED    demo-float: pid $FLOAT"

# Pin demo-pinned as libvirt's <vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/> would, with
# the thread ids vcpumap itself gives.
if taskset -c 0 true 2>/dev/null && taskset -c 1 true 2>/dev/null; then
  pinned_json=$(vcpumap vcpuinfo demo-pinned --json) || die "vcpumap vcpuinfo demo-pinned --json failed"
  vcpu0=$(json_of "$pinned_json" "[t['tid'] for t in d['vcpus'] if t['vcpu'] == 0][0]")
  threads_json=$(vcpumap threads demo-pinned --json) || die "vcpumap threads demo-pinned --json failed"
  emulator=$(json_of "$threads_json" "[t['tid'] for t in d['threads'] if t['role'] != 'vcpu']")
  heading "pinning demo-pinned: vCPU 0 (tid $vcpu0) to CPU 1, emulator threads ($emulator) to CPU 0"
  echo "\$ taskset -pc 1 $vcpu0"
  taskset -pc 1 "$vcpu0"
  for tid in $emulator; do taskset -pc 0 "$tid" >/dev/null || die "taskset -pc 0 $tid failed"; done
  echo "\$ taskset -pc 0 TID    # for each of $emulator"
  sleep 1
else
  heading "CPUs 0 and 1 are not both usable here: demo-pinned stays unpinned"
fi

heading "vcpumap                          # every VM: where each vCPU runs"
vcpumap
heading "vcpumap vcpuinfo demo-pinned     # the text virsh vcpuinfo prints"
vcpumap vcpuinfo demo-pinned
heading "vcpumap threads demo-float       # every thread with its role"
vcpumap threads demo-float
heading "ps -o pid,psr,comm -p $PINNED      # the note's puzzle: ps shows only the main thread"
ps -o pid,psr,comm -p "$PINNED"
heading "vcpumap topology"
vcpumap topology

heading "where demo-float's vCPUs run, every second (the unpinned vCPUs move; demo-pinned's vCPU 0 stays on CPU 1)"
for ((i = 0; i < 5; i++)); do
  list=$(vcpumap list --json 2>/dev/null) || die "vcpumap list --json failed"
  python3 - "$list" "$FLOAT" "$PINNED" <<'EOF'
import json, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)
d = json.loads(sys.argv[1])
line = time.strftime("%H:%M:%S")
for pid in map(int, sys.argv[2:]):
    vm = next((v for v in d["vms"] if v["pid"] == pid), None)
    if vm:
        cells = " ".join(f"vCPU{t['vcpu']}:CPU{t['cpu']}" for t in vm["vcpus"])
        line += f"   {vm['name']}: {cells}"
print(line)
EOF
  sleep 1
done

heading "stopping the guests this demo started (pids $PINNED $FLOAT)"
stop_started
echo "done"
