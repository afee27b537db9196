#!/usr/bin/env bash
# What one `vcpumap list --json` costs libvirtd, and how many calls it makes (issue 13).
# Starts libvirt with scripts/libvirt-env.sh if none answers, defines and starts N small TCG
# domains (64 MiB, 1 vCPU; default N=4), runs `list --json` RUNS times (default 20) and prints
# libvirtd's CPU time per run (utime+stime of its process) and vcpumap's calls per run.
# Destroys and undefines its domains, and stops only what libvirt-env.sh started, on exit.
# Usage: bash bench/libvirt_list_cost.sh PATH/TO/vcpumap [N] [RUNS]
set -euo pipefail
VCPUMAP=$1 N=${2:-4} RUNS=${3:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
XML="$HERE/../tests/integration/libvirt/domains/vcpumap-hang-pin.xml"
VIRSH=(virsh -c qemu:///system)
TMP=$(mktemp -d)
OURS=()
cleanup() {
  for name in "${OURS[@]}"; do
    "${VIRSH[@]}" destroy "$name" >/dev/null 2>&1 || true
    "${VIRSH[@]}" undefine "$name" >/dev/null 2>&1 || true
  done
  bash "$HERE/../scripts/libvirt-env.sh" stop >/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
bash "$HERE/../scripts/libvirt-env.sh" start >/dev/null
for ((i = 0; i < N; i++)); do
  name=vcpumap-bench-list-$i
  sed -e "s/vcpumap-hang-pin/$name/" -e "s/0000000000d1/$(printf '%012x' $((0xbe00 + i)))/" \
    "$XML" >"$TMP/$name.xml"
  "${VIRSH[@]}" define "$TMP/$name.xml" >/dev/null
  OURS+=("$name")
  "${VIRSH[@]}" start "$name" >/dev/null
done
pid=$(pgrep -o -x libvirtd)
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
for ((r = 0; r < RUNS; r++)); do "$VCPUMAP" list --json >/dev/null; done
after=$(ticks)
echo "libvirtd CPU per list --json with $N domains: $(python3 -c "print(round(($after - $before) / $hz / $RUNS * 1000, 2))") ms (over $RUNS runs)"
